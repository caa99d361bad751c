// The route table: host level (exact, wildcard suffixes, "*"), then longest path prefix.
#include <algorithm>

#include "ringside/http_route.h"

namespace ringside::http {
namespace {

constexpr size_t kMaxHost = 255;

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool is_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253 || name.front() == '.' || name.back() == '.') {
    return false;
  }
  for (char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
    if (!ok) return false;
  }
  return name.find("..") == std::string_view::npos;
}

// Sort key: 0 exact, 1 wildcard, 2 "*".
int host_level(const Route& route) {
  if (route.host == "*") return 2;
  return route.host.starts_with("*.") ? 1 : 0;
}

// The Host without port, as written in the request: "[::1]:80" -> "[::1]", "a.b:8" -> "a.b".
std::string_view strip_port(std::string_view authority) {
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    return close == std::string_view::npos ? authority : authority.substr(0, close + 1);
  }
  return authority.substr(0, authority.rfind(':'));
}

}  // namespace

bool parse_route_key(std::string_view text, Route& route, std::string* detail) {
  const size_t slash = text.find('/');
  const std::string_view host = text.substr(0, slash);
  route.host.clear();
  for (char c : host) route.host += lower(c);
  route.path_prefix = slash == std::string_view::npos ? "/" : std::string(text.substr(slash));
  const bool ok =
      route.host == "*" ||
      (route.host.starts_with("*.") && is_dns_name(std::string_view(route.host).substr(2))) ||
      is_dns_name(route.host);
  if (!ok && detail != nullptr) {
    *detail = "host '" + std::string(host) + "' is not a DNS name, '*.DOMAIN' or '*'";
  }
  return ok;
}

RouteTable::RouteTable(std::span<const Route> routes) : routes_(routes.begin(), routes.end()) {
  std::stable_sort(routes_.begin(), routes_.end(), [](const Route& a, const Route& b) {
    const int la = host_level(a), lb = host_level(b);
    if (la != lb) return la < lb;
    // Longer wildcard suffixes are more specific; then group equal hosts together.
    if (a.host.size() != b.host.size()) return a.host.size() > b.host.size();
    if (a.host != b.host) return a.host < b.host;
    return a.path_prefix.size() > b.path_prefix.size();
  });
}

const Route* RouteTable::match(std::string_view authority, std::string_view path) const {
  if (routes_.empty()) return nullptr;
  std::string_view host_text = strip_port(authority);
  if (!host_text.empty() && host_text.back() == '.') host_text.remove_suffix(1);  // "a.b."
  if (host_text.size() > kMaxHost) return nullptr;
  char buffer[kMaxHost];
  for (size_t i = 0; i < host_text.size(); ++i) buffer[i] = lower(host_text[i]);
  const std::string_view host(buffer, host_text.size());

  // routes_ is in precedence order and, within one host, longest prefix first: the first
  // route whose host covers the request's and whose prefix matches is the answer.
  for (const Route& route : routes_) {
    bool host_matches = false;
    switch (host_level(route)) {
      case 0:
        host_matches = route.host == host;
        break;
      case 1: {
        const std::string_view suffix = std::string_view(route.host).substr(1);  // ".b.c"
        host_matches = host.size() > suffix.size() && host.ends_with(suffix);
        break;
      }
      default:
        host_matches = true;
    }
    if (host_matches && path.starts_with(route.path_prefix)) return &route;
  }
  return nullptr;
}

}  // namespace ringside::http
