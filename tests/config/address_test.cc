#include "ringside/address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

namespace ringside {
namespace {

TEST(SocketAddressTest, ParsesIpv4) {
  auto address = SocketAddress::parse_numeric("10.0.0.7:15443");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->family(), AF_INET);
  EXPECT_EQ(address->port(), 15443);
  EXPECT_EQ(address->length, sizeof(sockaddr_in));
  EXPECT_EQ(address->to_string(), "10.0.0.7:15443");
}

TEST(SocketAddressTest, ParsesBracketedIpv6) {
  auto address = SocketAddress::parse_numeric("[::1]:8080");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->family(), AF_INET6);
  EXPECT_EQ(address->port(), 8080);
  EXPECT_EQ(address->length, sizeof(sockaddr_in6));
  EXPECT_EQ(address->to_string(), "[::1]:8080");

  auto full = SocketAddress::parse_numeric("[2001:db8:0:0:0:0:0:1]:1");
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->to_string(), "[2001:db8::1]:1");  // printed in canonical form
}

TEST(SocketAddressTest, WildcardForms) {
  for (const char* text : {"*:80", ":80", "0.0.0.0:80"}) {
    auto address = SocketAddress::parse_numeric(text);
    ASSERT_TRUE(address.ok()) << text;
    EXPECT_EQ(address->to_string(), "0.0.0.0:80") << text;
  }
}

TEST(SocketAddressTest, PortLimits) {
  EXPECT_TRUE(SocketAddress::parse_numeric("1.2.3.4:0").ok());
  EXPECT_EQ(SocketAddress::parse_numeric("1.2.3.4:65535")->port(), 65535);
  EXPECT_FALSE(SocketAddress::parse_numeric("1.2.3.4:65536").ok());
  EXPECT_FALSE(SocketAddress::parse_numeric("1.2.3.4:-1").ok());
  EXPECT_FALSE(SocketAddress::parse_numeric("1.2.3.4:").ok());
  EXPECT_FALSE(SocketAddress::parse_numeric("1.2.3.4:80x").ok());
  EXPECT_FALSE(SocketAddress::parse_numeric("1.2.3.4: 80").ok());
}

TEST(SocketAddressTest, RejectsMalformed) {
  for (const char* text : {"", "1.2.3.4", "nowhere", "::1:80", "[::1]80", "[::1", "[]:80",
                           "1.2.3.256:80", "localhost:80", "[1.2.3.4]:80x"}) {
    auto address = SocketAddress::parse_numeric(text);
    EXPECT_FALSE(address.ok()) << text;
    if (!address.ok()) {
      EXPECT_EQ(address.error().kind, ErrorKind::kConfig) << text;
      EXPECT_FALSE(address.error().what.empty()) << text;
    }
  }
}

TEST(SocketAddressTest, ResolveAcceptsNumericWithoutDns) {
  std::string detail;
  auto address = SocketAddress::resolve("192.0.2.1:443", &detail);
  ASSERT_TRUE(address.ok()) << detail;
  EXPECT_EQ(address->to_string(), "192.0.2.1:443");
}

TEST(SocketAddressTest, ResolvesLocalhostPreferringIpv4) {
  std::string detail;
  auto address = SocketAddress::resolve("localhost:8080", &detail);
  ASSERT_TRUE(address.ok()) << detail;
  EXPECT_EQ(address->family(), AF_INET);
  EXPECT_EQ(address->to_string(), "127.0.0.1:8080");
}

TEST(SocketAddressTest, ResolveExplainsFailures) {
  std::string detail;
  auto unknown = SocketAddress::resolve("no-such-host.invalid:80", &detail);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(detail.find("no-such-host.invalid"), std::string::npos) << detail;

  detail.clear();
  auto no_port = SocketAddress::resolve("localhost", &detail);
  ASSERT_FALSE(no_port.ok());
  EXPECT_NE(detail.find("HOST:PORT"), std::string::npos) << detail;
}

TEST(SocketAddressTest, UsableWithBind) {
  auto address = SocketAddress::parse_numeric("127.0.0.1:0");
  ASSERT_TRUE(address.ok());
  const int fd = socket(address->family(), SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(bind(fd, address->get(), address->length), 0);
  close(fd);
}

TEST(SocketAddressTest, UnspecifiedPrintsSomethingReadable) {
  SocketAddress empty;
  EXPECT_EQ(empty.port(), 0);
  EXPECT_EQ(empty.to_string(), "(unspecified)");
}

IpRange range(std::string_view text) {
  std::string detail;
  auto parsed = IpRange::parse(text, &detail);
  EXPECT_TRUE(parsed.ok()) << text << ": " << detail;
  return parsed.ok() ? parsed.value() : IpRange{};
}

std::array<uint8_t, 16> ip(const char* text, int* family) {
  std::array<uint8_t, 16> bytes{};
  *family = inet_pton(AF_INET, text, bytes.data()) == 1 ? AF_INET : AF_INET6;
  if (*family == AF_INET6) {
    EXPECT_EQ(inet_pton(AF_INET6, text, bytes.data()), 1) << text;
  }
  return bytes;
}

bool in(std::string_view cidr, const char* address) {
  int family = 0;
  auto bytes = ip(address, &family);
  return range(cidr).contains(family, bytes.data());
}

TEST(IpRangeTest, MatchesByPrefix) {
  EXPECT_TRUE(in("10.0.0.0/16", "10.0.255.1"));
  EXPECT_FALSE(in("10.0.0.0/16", "10.1.0.1"));
  EXPECT_TRUE(in("10.0.0.0/9", "10.127.0.1"));
  EXPECT_FALSE(in("10.0.0.0/9", "10.128.0.1"));
  EXPECT_TRUE(in("0.0.0.0/0", "192.0.2.1"));
  EXPECT_TRUE(in("192.0.2.7", "192.0.2.7"));
  EXPECT_FALSE(in("192.0.2.7", "192.0.2.8"));
  EXPECT_TRUE(in("fd00::/8", "fd12::1"));
  EXPECT_FALSE(in("fd00::/8", "fe80::1"));
  EXPECT_TRUE(in("::1", "::1"));
}

TEST(IpRangeTest, FamiliesDoNotMixExceptMappedIpv4) {
  EXPECT_FALSE(in("0.0.0.0/0", "::1"));
  EXPECT_FALSE(in("::/0", "127.0.0.1"));
  // A dual-stack listener reports an IPv4 client as ::ffff:a.b.c.d.
  EXPECT_TRUE(in("10.0.0.0/8", "::ffff:10.2.3.4"));
  EXPECT_FALSE(in("10.0.0.0/8", "::ffff:11.2.3.4"));
}

TEST(IpRangeTest, AnyOfSeveral) {
  std::vector<IpRange> ranges{range("10.0.0.0/8"), range("172.16.0.0/12")};
  int family = 0;
  EXPECT_TRUE(any_contains(ranges, AF_INET, ip("172.31.1.1", &family).data()));
  EXPECT_FALSE(any_contains(ranges, AF_INET, ip("192.168.1.1", &family).data()));
  EXPECT_FALSE(any_contains({}, AF_INET, ip("10.0.0.1", &family).data()));
  EXPECT_FALSE(any_contains(ranges, 0, ip("10.0.0.1", &family).data()));  // unknown peer
}

TEST(IpRangeTest, RefusesMalformedWithAReason) {
  for (const char* bad : {"", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0/8",
                          "example.com/8", "10.0.0.0/8x", "/8"}) {
    std::string detail;
    EXPECT_FALSE(IpRange::parse(bad, &detail).ok()) << bad;
    EXPECT_FALSE(detail.empty()) << bad;
  }
  std::string detail;
  EXPECT_FALSE(IpRange::parse("10.0.0.1/8", &detail).ok());
  EXPECT_NE(detail.find("beyond the /8 prefix"), std::string::npos) << detail;
}

}  // namespace
}  // namespace ringside
