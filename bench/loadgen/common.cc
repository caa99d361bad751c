#include "common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace ringside::bench {

namespace {

std::optional<double> parse_number(std::string_view text, size_t* used) {
  size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
  if (i == 0) return std::nullopt;
  std::string digits(text.substr(0, i));
  char* end = nullptr;
  double value = std::strtod(digits.c_str(), &end);
  if (end != digits.c_str() + digits.size() || !std::isfinite(value)) return std::nullopt;
  *used = i;
  return value;
}

}  // namespace

std::optional<uint64_t> parse_duration_ns(std::string_view text) {
  size_t used = 0;
  auto value = parse_number(text, &used);
  if (!value) return std::nullopt;
  std::string_view unit = text.substr(used);
  double scale;
  if (unit.empty() || unit == "s") {
    scale = 1e9;
  } else if (unit == "ms") {
    scale = 1e6;
  } else if (unit == "us") {
    scale = 1e3;
  } else if (unit == "ns") {
    scale = 1;
  } else if (unit == "m") {
    scale = 60e9;
  } else if (unit == "h") {
    scale = 3600e9;
  } else {
    return std::nullopt;
  }
  double ns = *value * scale;
  if (ns > 1e18) return std::nullopt;
  return static_cast<uint64_t>(std::llround(ns));
}

std::optional<uint64_t> parse_size(std::string_view text) {
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr == text.data()) return std::nullopt;
  std::string_view unit(ptr, text.data() + text.size() - ptr);
  uint64_t scale = 1;
  if (unit.empty() || unit == "b" || unit == "B") {
    scale = 1;
  } else if (unit == "k" || unit == "K" || unit == "KiB") {
    scale = 1024;
  } else if (unit == "m" || unit == "M" || unit == "MiB") {
    scale = 1024 * 1024;
  } else if (unit == "g" || unit == "G" || unit == "GiB") {
    scale = 1024 * 1024 * 1024;
  } else {
    return std::nullopt;
  }
  if (value > UINT64_MAX / scale) return std::nullopt;
  return value * scale;
}

std::string format_duration_ns(double ns) {
  char buf[32];
  if (ns < 1e3) {
    std::snprintf(buf, sizeof buf, "%.0fns", ns);
  } else if (ns < 1e6) {
    std::snprintf(buf, sizeof buf, "%.2fus", ns / 1e3);
  } else if (ns < 1e9) {
    std::snprintf(buf, sizeof buf, "%.2fms", ns / 1e6);
  } else if (ns < 60e9) {
    std::snprintf(buf, sizeof buf, "%.2fs", ns / 1e9);
  } else {
    std::snprintf(buf, sizeof buf, "%.2fm", ns / 60e9);
  }
  return buf;
}

std::string format_bytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KB", "MB", "GB", "TB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) {
    bytes /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%s", bytes, kUnits[unit]);
  return buf;
}

uint16_t Endpoint::port() const {
  if (storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
}

std::string Endpoint::to_string() const {
  char host[INET6_ADDRSTRLEN] = {};
  if (storage.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, host,
              sizeof host);
  } else {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, host,
              sizeof host);
  }
  // snprintf rather than string concatenation: GCC 12 reports a false -Wrestrict there.
  char text[INET6_ADDRSTRLEN + 16];
  std::snprintf(text, sizeof text, storage.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host,
                static_cast<unsigned>(port()));
  return text;
}

std::optional<Endpoint> resolve_endpoint(std::string_view host, uint16_t port, std::string* error) {
  std::string name(host.empty() || host == "*" ? "0.0.0.0" : host);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* results = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(name.c_str(), service.c_str(), &hints, &results);
  if (rc != 0 || results == nullptr) {
    *error = "cannot resolve '" + name + "': " + gai_strerror(rc);
    return std::nullopt;
  }
  // Prefer IPv4, as most local test targets listen there.
  const addrinfo* chosen = results;
  for (const addrinfo* ai = results; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET) {
      chosen = ai;
      break;
    }
  }
  Endpoint endpoint;
  std::memcpy(&endpoint.storage, chosen->ai_addr, chosen->ai_addrlen);
  endpoint.length = chosen->ai_addrlen;
  freeaddrinfo(results);
  return endpoint;
}

std::optional<Endpoint> resolve_host_port(std::string_view text, std::string* error) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      *error = "bad address '" + std::string(text) + "' (expected [V6]:PORT)";
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      port_text = text;
    } else {
      host = text.substr(0, colon);
      port_text = text.substr(colon + 1);
    }
  }
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port > 65535) {
    *error = "bad address '" + std::string(text) + "' (expected HOST:PORT)";
    return std::nullopt;
  }
  return resolve_endpoint(host, static_cast<uint16_t>(port), error);
}

void tune_stream_socket(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace ringside::bench
