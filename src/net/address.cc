#include "ringside/address.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <charconv>
#include <cstring>

namespace ringside {

namespace {

struct HostPort {
  std::string_view host;
  uint16_t port = 0;
};

// Splits "HOST:PORT", "[V6]:PORT", ":PORT" or "*:PORT". Brackets are removed from host.
Result<HostPort> split_host_port(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return make_error(ErrorKind::kConfig, Side::kInternal, "expected [IPV6]:PORT");
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
    if (host.empty()) {
      return make_error(ErrorKind::kConfig, Side::kInternal, "empty address in brackets");
    }
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return make_error(ErrorKind::kConfig, Side::kInternal, "expected HOST:PORT");
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    // An IPv6 literal without brackets ("::1:80") is ambiguous: refuse it.
    if (host.find(':') != std::string_view::npos) {
      return make_error(ErrorKind::kConfig, Side::kInternal,
                        "an IPv6 address needs brackets: [V6]:PORT");
    }
  }
  unsigned port = 0;
  const char* end = port_text.data() + port_text.size();
  auto [ptr, ec] = std::from_chars(port_text.data(), end, port);
  if (port_text.empty() || ec != std::errc() || ptr != end || port > 65535) {
    return make_error(ErrorKind::kConfig, Side::kInternal, "port is not a number in 0-65535");
  }
  if (host == "*") host = {};
  return HostPort{host, static_cast<uint16_t>(port)};
}

SocketAddress from_ipv4(const in_addr& ip, uint16_t port) {
  SocketAddress address;
  auto* sin = reinterpret_cast<sockaddr_in*>(&address.storage);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  sin->sin_addr = ip;
  address.length = sizeof(sockaddr_in);
  return address;
}

SocketAddress from_ipv6(const in6_addr& ip, uint16_t port) {
  SocketAddress address;
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  sin6->sin6_addr = ip;
  address.length = sizeof(sockaddr_in6);
  return address;
}

}  // namespace

uint16_t SocketAddress::port() const {
  switch (family()) {
    case AF_INET:
      return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
    case AF_INET6:
      return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
    default:
      return 0;
  }
}

std::string SocketAddress::to_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  switch (family()) {
    case AF_INET: {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(&storage);
      inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
      return std::string(text) + ":" + std::to_string(port());
    }
    case AF_INET6: {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage);
      inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
      return "[" + std::string(text) + "]:" + std::to_string(port());
    }
    default:
      return "(unspecified)";
  }
}

Result<SocketAddress> SocketAddress::parse_numeric(std::string_view text) {
  auto split = split_host_port(text);
  if (!split) return split.error();
  const HostPort& hp = split.value();
  if (hp.host.empty()) return from_ipv4(in_addr{htonl(INADDR_ANY)}, hp.port);
  if (hp.host.size() >= INET6_ADDRSTRLEN) {
    return make_error(ErrorKind::kConfig, Side::kInternal, "not a numeric IP address");
  }
  char host[INET6_ADDRSTRLEN] = {};
  std::memcpy(host, hp.host.data(), hp.host.size());
  in_addr ip4{};
  if (inet_pton(AF_INET, host, &ip4) == 1) return from_ipv4(ip4, hp.port);
  in6_addr ip6{};
  if (inet_pton(AF_INET6, host, &ip6) == 1) return from_ipv6(ip6, hp.port);
  return make_error(ErrorKind::kConfig, Side::kInternal, "not a numeric IP address");
}

Result<SocketAddress> SocketAddress::resolve(std::string_view text, std::string* detail) {
  auto split = split_host_port(text);
  if (!split) {
    if (detail) *detail = std::string(split.error().what);
    return split.error();
  }
  auto numeric = parse_numeric(text);
  if (numeric) return numeric;

  const std::string host(split->host);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* results = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &results);
  if (rc != 0) {
    if (detail) *detail = "cannot resolve '" + host + "': " + gai_strerror(rc);
    return make_error(ErrorKind::kConfig, Side::kInternal, "host name does not resolve");
  }
  // Prefer IPv4: the sidecar's peers are almost always reachable over it, and a
  // host with both families should not depend on the resolver's ordering.
  const addrinfo* chosen = nullptr;
  for (const addrinfo* ai = results; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET) {
      chosen = ai;
      break;
    }
  }
  for (const addrinfo* ai = results; chosen == nullptr && ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET6) chosen = ai;
  }
  Result<SocketAddress> out =
      make_error(ErrorKind::kConfig, Side::kInternal, "host name has no IP address");
  if (chosen == nullptr) {
    if (detail) *detail = "'" + host + "' has no IPv4 or IPv6 address";
  } else {
    // Copy the whole sockaddr so an IPv6 scope id survives.
    SocketAddress address;
    std::memcpy(&address.storage, chosen->ai_addr, chosen->ai_addrlen);
    address.length = chosen->ai_addrlen;
    if (chosen->ai_family == AF_INET) {
      reinterpret_cast<sockaddr_in*>(&address.storage)->sin_port = htons(split->port);
    } else {
      reinterpret_cast<sockaddr_in6*>(&address.storage)->sin6_port = htons(split->port);
    }
    out = address;
  }
  freeaddrinfo(results);
  return out;
}

Result<IpRange> IpRange::parse(std::string_view text, std::string* detail) {
  auto fail = [detail](std::string why) -> Result<IpRange> {
    if (detail) *detail = std::move(why);
    return make_error(ErrorKind::kConfig, Side::kInternal, "not an IP range");
  };
  const size_t slash = text.find('/');
  const std::string_view host = text.substr(0, slash);
  char buf[INET6_ADDRSTRLEN] = {};
  if (host.empty() || host.size() >= sizeof(buf)) return fail("expected ADDRESS or ADDRESS/BITS");
  std::memcpy(buf, host.data(), host.size());
  IpRange range;
  if (inet_pton(AF_INET, buf, range.addr) == 1) {
    range.family = AF_INET;
  } else if (inet_pton(AF_INET6, buf, range.addr) == 1) {
    range.family = AF_INET6;
  } else {
    return fail("'" + std::string(host) + "' is not a numeric IPv4 or IPv6 address");
  }
  const unsigned bits = range.family == AF_INET ? 32 : 128;
  unsigned prefix = bits;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    const char* end = digits.data() + digits.size();
    auto [ptr, ec] = std::from_chars(digits.data(), end, prefix);
    if (digits.empty() || ec != std::errc() || ptr != end || prefix > bits) {
      return fail("prefix length is not a number in 0-" + std::to_string(bits));
    }
  }
  range.prefix = static_cast<uint8_t>(prefix);
  for (unsigned bit = prefix; bit < bits; ++bit) {
    if (range.addr[bit / 8] & (0x80u >> (bit % 8))) {
      return fail("address has bits set beyond the /" + std::to_string(prefix) + " prefix");
    }
  }
  return range;
}

bool IpRange::contains(int addr_family, const uint8_t* address) const {
  static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (addr_family == AF_INET6 && family == AF_INET &&
      std::memcmp(address, kMappedPrefix, sizeof(kMappedPrefix)) == 0) {
    return contains(AF_INET, address + sizeof(kMappedPrefix));
  }
  if (addr_family != family) return false;
  const unsigned whole = prefix / 8;
  if (std::memcmp(address, addr, whole) != 0) return false;
  const unsigned rest = prefix % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xffu << (8 - rest));
  return (address[whole] & mask) == addr[whole];
}

bool any_contains(const std::vector<IpRange>& ranges, int family, const uint8_t* address) {
  for (const IpRange& range : ranges) {
    if (range.contains(family, address)) return true;
  }
  return false;
}

}  // namespace ringside
