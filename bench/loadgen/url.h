// The target URL of a ringside-bench run.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ringside::bench {

struct Url {
  std::string scheme;  // "http", "https", "tcp" or "tls"
  std::string host;    // without brackets for IPv6 literals
  uint16_t port = 0;   // explicit, or the scheme's default (80, 443)
  std::string target;  // path and query, "/" when absent; never the fragment
  bool tls = false;    // https or tls

  bool is_ipv6_literal() const { return host.find(':') != std::string::npos; }
  // The Host header value: host, with [brackets] and :port only when they are needed.
  std::string host_header() const;
};

// Parses "http://host[:port][/path][?query]" (also https://, and tcp:// tls:// for
// --mode tcp, which need a port). On failure error says what is wrong in one line.
std::optional<Url> parse_url(std::string_view text, std::string* error);

}  // namespace ringside::bench
