// Socket addresses: parsing "HOST:PORT" / "[v6]:PORT" and printing them back.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ringside/result.h"

namespace ringside {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }
  uint16_t port() const;
  // "127.0.0.1:8080" or "[::1]:8080".
  std::string to_string() const;

  // Numeric IPv4/IPv6 literal with a port; no name resolution. "*:P" and ":P" mean 0.0.0.0.
  static Result<SocketAddress> parse_numeric(std::string_view text);
  // Like parse_numeric, but a host name is resolved (getaddrinfo, first IPv4 then IPv6
  // result). Blocking: start-up and control thread only. detail says why on failure.
  static Result<SocketAddress> resolve(std::string_view text, std::string* detail);
};

// An IP address range in CIDR notation ("10.0.0.0/16", "fd00::/8"); a bare address is a
// range of one ("10.0.0.7" is 10.0.0.7/32).
struct IpRange {
  uint16_t family = 0;  // AF_INET or AF_INET6
  uint8_t prefix = 0;   // leading bits that must match
  uint8_t addr[16] = {};

  // Numeric only; bits beyond the prefix must be zero ("10.0.0.1/8" is refused: it is
  // usually a typo for a host). On failure detail says why.
  static Result<IpRange> parse(std::string_view text, std::string* detail);
  // True when addr (4 bytes for AF_INET, 16 for AF_INET6, network order) is in the range.
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack socket reports for an
  // IPv4 client) matches the IPv4 ranges.
  bool contains(int addr_family, const uint8_t* address) const;
};

// True when any of ranges contains the address (IpRange::contains).
bool any_contains(const std::vector<IpRange>& ranges, int family, const uint8_t* address);

}  // namespace ringside
