// Routing of HTTP requests on egress listeners: --route HOST[/PREFIX]=SERVICE picks the
// upstream service by Host and path prefix; a request no route matches goes to the
// listener's own service.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ringside/http_config.h"

namespace ringside::http {

// Splits "HOST[/PREFIX]" (the part of --route before '='): host lower-cased, prefix "/"
// when absent. False, with detail set, when the host is not a DNS name, "*.name" or "*".
bool parse_route_key(std::string_view text, Route& route, std::string* detail);

// An immutable table built once at start-up; lookups allocate nothing and may run on
// any number of threads at once.
//
// Precedence: the most specific host level that has a matching route wins: the exact host
// first, then wildcards "*.suffix" from the longest suffix to the shortest ("*.b.c"
// covers "a.b.c" and "x.a.b.c", never "b.c" itself), then "*". Within a level the longest
// path prefix that matches wins. A level whose prefixes all miss the path falls through to
// the next level, and a request nothing matches returns nullptr (the listener's service).
class RouteTable {
 public:
  RouteTable() = default;
  explicit RouteTable(std::span<const Route> routes);

  // authority: the request's Host (any case, may carry ":port"); path: the target's path
  // (target_path() in http_proxy.h; the query does not take part).
  const Route* match(std::string_view authority, std::string_view path) const;

  bool empty() const { return routes_.empty(); }
  size_t size() const { return routes_.size(); }
  // The i-th route in precedence order (match() returns pointers to these).
  const Route& at(size_t i) const { return routes_[i]; }

 private:
  std::vector<Route> routes_;  // in precedence order: host level, then longest prefix
};

// The retry limit of a request: its route's retries=N when given, else --retries.
inline unsigned retry_limit(const Route* route, unsigned global_retries) {
  return route != nullptr && route->retries.has_value() ? *route->retries : global_retries;
}

}  // namespace ringside::http
