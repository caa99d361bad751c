#include "url.h"

#include <gtest/gtest.h>

#include "common.h"

namespace ringside::bench {
namespace {

Url parse_ok(const char* text) {
  std::string error;
  auto url = parse_url(text, &error);
  EXPECT_TRUE(url.has_value()) << text << ": " << error;
  return url.value_or(Url{});
}

std::string parse_error(const char* text) {
  std::string error;
  auto url = parse_url(text, &error);
  EXPECT_FALSE(url.has_value()) << text;
  return error;
}

TEST(ParseUrl, DefaultsPortAndPath) {
  Url url = parse_ok("http://example.com");
  EXPECT_EQ(url.scheme, "http");
  EXPECT_EQ(url.host, "example.com");
  EXPECT_EQ(url.port, 80);
  EXPECT_EQ(url.target, "/");
  EXPECT_FALSE(url.tls);
  EXPECT_EQ(url.host_header(), "example.com");

  Url secure = parse_ok("HTTPS://api.local/v1");
  EXPECT_EQ(secure.port, 443);
  EXPECT_TRUE(secure.tls);
  EXPECT_EQ(secure.target, "/v1");
}

TEST(ParseUrl, PortPathQueryAndFragment) {
  Url url = parse_ok("http://127.0.0.1:8080/a/b?x=1&y=2#frag");
  EXPECT_EQ(url.host, "127.0.0.1");
  EXPECT_EQ(url.port, 8080);
  EXPECT_EQ(url.target, "/a/b?x=1&y=2");
  EXPECT_EQ(url.host_header(), "127.0.0.1:8080");
  EXPECT_EQ(parse_ok("http://h?q").target, "/?q");
}

TEST(ParseUrl, Ipv6Literal) {
  Url url = parse_ok("https://[::1]:8443/x");
  EXPECT_EQ(url.host, "::1");
  EXPECT_EQ(url.port, 8443);
  EXPECT_TRUE(url.is_ipv6_literal());
  EXPECT_EQ(url.host_header(), "[::1]:8443");
}

TEST(ParseUrl, StreamSchemesNeedAPort) {
  Url url = parse_ok("tls://10.0.0.1:15443");
  EXPECT_TRUE(url.tls);
  EXPECT_EQ(url.port, 15443);
  EXPECT_NE(parse_error("tcp://10.0.0.1").find("needs a port"), std::string::npos);
}

TEST(ParseUrl, RejectsMalformed) {
  EXPECT_NE(parse_error("example.com/x").find("expected http://"), std::string::npos);
  EXPECT_NE(parse_error("ftp://example.com").find("scheme"), std::string::npos);
  EXPECT_NE(parse_error("http://").find("missing host"), std::string::npos);
  EXPECT_NE(parse_error("http://h:0/").find("bad port"), std::string::npos);
  EXPECT_NE(parse_error("http://h:70000/").find("bad port"), std::string::npos);
  EXPECT_NE(parse_error("http://h:/").find("bad port"), std::string::npos);
  EXPECT_NE(parse_error("http://h:8x/").find("bad port"), std::string::npos);
  EXPECT_NE(parse_error("http://[::1/").find("IPv6"), std::string::npos);
  EXPECT_NE(parse_error("http://u:p@h/").find("user information"), std::string::npos);
  EXPECT_NE(parse_error("http://h/a b").find("spaces"), std::string::npos);
  EXPECT_NE(parse_error("http://h%/").find("invalid character"), std::string::npos);
}

TEST(ParseDuration, Units) {
  EXPECT_EQ(parse_duration_ns("10s"), 10'000'000'000u);
  EXPECT_EQ(parse_duration_ns("500ms"), 500'000'000u);
  EXPECT_EQ(parse_duration_ns("1m"), 60'000'000'000u);
  EXPECT_EQ(parse_duration_ns("250us"), 250'000u);
  EXPECT_EQ(parse_duration_ns("1.5s"), 1'500'000'000u);
  EXPECT_EQ(parse_duration_ns("3"), 3'000'000'000u);
  EXPECT_FALSE(parse_duration_ns(""));
  EXPECT_FALSE(parse_duration_ns("-1s"));
  EXPECT_FALSE(parse_duration_ns("10q"));
  EXPECT_FALSE(parse_duration_ns("ms"));
}

TEST(ParseSize, Suffixes) {
  EXPECT_EQ(parse_size("4096"), 4096u);
  EXPECT_EQ(parse_size("16k"), 16384u);
  EXPECT_EQ(parse_size("1M"), 1048576u);
  EXPECT_FALSE(parse_size("12x"));
  EXPECT_FALSE(parse_size("k"));
}

TEST(ResolveHostPort, ParsesNumericForms) {
  std::string error;
  auto v4 = resolve_host_port("127.0.0.1:8080", &error);
  ASSERT_TRUE(v4) << error;
  EXPECT_EQ(v4->to_string(), "127.0.0.1:8080");
  auto v6 = resolve_host_port("[::1]:9", &error);
  ASSERT_TRUE(v6) << error;
  EXPECT_EQ(v6->to_string(), "[::1]:9");
  EXPECT_FALSE(resolve_host_port("127.0.0.1:99999", &error));
  EXPECT_NE(error.find("HOST:PORT"), std::string::npos);
}

}  // namespace
}  // namespace ringside::bench
