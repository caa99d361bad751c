// Socket addresses: parsing "HOST:PORT" / "[v6]:PORT" and printing them back.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

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

}  // namespace ringside
