#include "ringside/address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace ringside
