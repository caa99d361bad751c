#include "url.h"

#include <charconv>

namespace ringside::bench {

std::string Url::host_header() const {
  // Built by appending: GCC 12 reports a false -Wrestrict on "x" + std::string.
  std::string header;
  if (is_ipv6_literal()) {
    header.append("[").append(host).append("]");
  } else {
    header = host;
  }
  bool default_port = (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
  if (!default_port) header.append(":").append(std::to_string(port));
  return header;
}

std::optional<Url> parse_url(std::string_view text, std::string* error) {
  Url url;
  size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) {
    *error = "bad URL '" + std::string(text) + "': expected http://HOST[:PORT]/PATH";
    return std::nullopt;
  }
  url.scheme = std::string(text.substr(0, scheme_end));
  for (char& c : url.scheme) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  uint16_t default_port = 0;
  if (url.scheme == "http") {
    default_port = 80;
  } else if (url.scheme == "https") {
    default_port = 443;
    url.tls = true;
  } else if (url.scheme == "tcp") {
  } else if (url.scheme == "tls") {
    url.tls = true;
  } else {
    *error = "bad URL '" + std::string(text) + "': scheme must be http, https, tcp or tls";
    return std::nullopt;
  }
  std::string_view rest = text.substr(scheme_end + 3);
  size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view target =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (size_t hash = target.find('#'); hash != std::string_view::npos) {
    target = target.substr(0, hash);
  }
  if (authority.find('@') != std::string_view::npos) {
    *error = "bad URL '" + std::string(text) + "': user information is not supported";
    return std::nullopt;
  }
  std::string_view host;
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      *error = "bad URL '" + std::string(text) + "': unterminated IPv6 literal";
      return std::nullopt;
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        *error = "bad URL '" + std::string(text) + "': junk after IPv6 literal";
        return std::nullopt;
      }
      port_text = after.substr(1);
      if (port_text.empty()) port_text = "-";
    }
  } else {
    size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) port_text = "-";  // "host:" is malformed
    }
  }
  if (host.empty()) {
    *error = "bad URL '" + std::string(text) + "': missing host";
    return std::nullopt;
  }
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == ':';
    if (!ok) {
      *error = "bad URL '" + std::string(text) + "': invalid character in host";
      return std::nullopt;
    }
  }
  url.host = std::string(host);
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      *error = "bad URL '" + std::string(text) + "': bad port '" + std::string(port_text) + "'";
      return std::nullopt;
    }
    url.port = static_cast<uint16_t>(port);
  } else if (default_port == 0) {
    *error = "bad URL '" + std::string(text) + "': " + url.scheme + ":// needs a port";
    return std::nullopt;
  } else {
    url.port = default_port;
  }
  if (target.empty()) {
    url.target = "/";
  } else if (target.front() == '?') {
    url.target.assign("/").append(target);
  } else {
    url.target = std::string(target);
  }
  for (char c : url.target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      *error = "bad URL '" + std::string(text) + "': spaces or control characters in path";
      return std::nullopt;
    }
  }
  return url;
}

}  // namespace ringside::bench
