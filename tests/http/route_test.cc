// RouteTable precedence: exact host, then wildcard suffixes (longest first), then "*";
// longest path prefix within a host level; fall-through; case and port handling.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ringside/http_route.h"

namespace ringside::http {
namespace {

Route route(std::string_view key, std::string service) {
  Route r;
  std::string detail;
  EXPECT_TRUE(parse_route_key(key, r, &detail)) << detail;
  r.service = std::move(service);
  return r;
}

std::string service_of(const RouteTable& table, std::string_view host, std::string_view path) {
  const Route* r = table.match(host, path);
  return r == nullptr ? "(default)" : r->service;
}

TEST(ParseRouteKey, SplitsHostAndPrefix) {
  Route r;
  ASSERT_TRUE(parse_route_key("Orders.NS/api/v1", r, nullptr));
  EXPECT_EQ(r.host, "orders.ns");
  EXPECT_EQ(r.path_prefix, "/api/v1");
  ASSERT_TRUE(parse_route_key("*.example.com", r, nullptr));
  EXPECT_EQ(r.host, "*.example.com");
  EXPECT_EQ(r.path_prefix, "/");
  ASSERT_TRUE(parse_route_key("*/static", r, nullptr));
  EXPECT_EQ(r.host, "*");
  std::string detail;
  for (std::string_view bad : {"", "/x", "a b", "*.", "a.*.b", "**.a", "a..b", "a:80", ".a"}) {
    EXPECT_FALSE(parse_route_key(bad, r, &detail)) << bad;
    EXPECT_NE(detail, "") << bad;
  }
}

TEST(RouteTable, EmptyTableMatchesNothing) {
  RouteTable table;
  EXPECT_EQ(table.match("a", "/"), nullptr);
}

TEST(RouteTable, Precedence) {
  const std::vector<Route> routes = {
      route("*", "any"),
      route("*.example.com", "wild"),
      route("*.api.example.com", "wild-api"),
      route("www.example.com", "www"),
      route("www.example.com/static", "www-static"),
      route("www.example.com/static/img", "www-img"),
      route("*.example.com/only", "wild-only"),
  };
  const RouteTable table(routes);
  EXPECT_EQ(service_of(table, "www.example.com", "/"), "www");
  EXPECT_EQ(service_of(table, "WWW.Example.COM:8080", "/static/x"), "www-static");
  EXPECT_EQ(service_of(table, "www.example.com", "/static/img/a.png"), "www-img");
  EXPECT_EQ(service_of(table, "www.example.com.", "/staticky"), "www-static");  // byte prefix
  EXPECT_EQ(service_of(table, "v1.api.example.com", "/"), "wild-api");
  EXPECT_EQ(service_of(table, "api.example.com", "/"), "wild");  // "*.api..." needs a label
  EXPECT_EQ(service_of(table, "shop.example.com", "/only/x"), "wild-only");
  EXPECT_EQ(service_of(table, "example.com", "/"), "any");  // "*.example.com" needs a label
  EXPECT_EQ(service_of(table, "other.org", "/x"), "any");
  EXPECT_EQ(service_of(table, "", "/x"), "any");
}

TEST(RouteTable, LevelWithoutMatchingPrefixFallsThrough) {
  const std::vector<Route> routes = {
      route("orders.ns/v2", "orders-v2"),
      route("*.ns/admin", "admin"),
  };
  const RouteTable table(routes);
  EXPECT_EQ(service_of(table, "orders.ns", "/v2/list"), "orders-v2");
  EXPECT_EQ(service_of(table, "orders.ns", "/admin/x"), "admin");
  EXPECT_EQ(service_of(table, "orders.ns", "/v1"), "(default)");
}

TEST(RouteTable, PortAndIpv6Literal) {
  const std::vector<Route> routes = {route("orders.ns", "orders")};
  const RouteTable table(routes);
  EXPECT_EQ(service_of(table, "orders.ns:15080", "/"), "orders");
  EXPECT_EQ(service_of(table, "[::1]:80", "/"), "(default)");
  EXPECT_EQ(service_of(table, std::string(300, 'a'), "/"), "(default)");
}

TEST(RouteTable, OrderOfFlagsDoesNotMatter) {
  std::vector<Route> routes = {route("a.ns/x", "short"), route("a.ns/x/y", "long")};
  EXPECT_EQ(service_of(RouteTable(routes), "a.ns", "/x/y/z"), "long");
  std::swap(routes[0], routes[1]);
  EXPECT_EQ(service_of(RouteTable(routes), "a.ns", "/x/y/z"), "long");
}

TEST(RouteTable, RetryLimitPerRouteOrGlobal) {
  std::vector<Route> routes = {route("a.ns", "a"), route("b.ns", "b")};
  routes[1].retries = 0;
  const RouteTable table(routes);
  EXPECT_EQ(retry_limit(table.match("a.ns", "/"), 2), 2u);
  EXPECT_EQ(retry_limit(table.match("b.ns", "/"), 2), 0u);
  EXPECT_EQ(retry_limit(table.match("c.ns", "/"), 3), 3u);
}

}  // namespace
}  // namespace ringside::http
