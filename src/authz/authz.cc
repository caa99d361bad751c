// Identity patterns, rules and their matching (ringside/authz.h, docs/authz.md).
#include "ringside/authz.h"

#include <iterator>

#include "ringside/json.h"

namespace ringside::authz {
namespace {

constexpr std::string_view kSpiffe = "spiffe://";

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

bool fail(std::string* detail, std::string why) {
  if (detail) *detail = std::move(why);
  return false;
}

// A DNS name as ringside takes service names: labels of letters, digits and '-' (not at
// either end), 1-63 bytes each, at most 253 in all.
bool valid_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t label = 0;
  for (size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '.') {
      if (label == 0 || label > 63 || name[i - 1] == '-' || name[i - label] == '-') return false;
      label = 0;
      continue;
    }
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
    ++label;
  }
  return true;
}

// The SPIFFE ID rules (SPIFFE-ID.md 2.1, 2.2): trust domain of [a-z0-9.-_], path segments
// of [a-zA-Z0-9.-_], none empty, none "." or "..".
bool valid_trust_domain(std::string_view td) {
  if (td.empty() || td.size() > 255) return false;
  for (char c : td) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool valid_spiffe_path(std::string_view path) {
  // "" (the trust domain's own ID) or "/seg[/seg...]".
  if (path.empty()) return true;
  if (path.front() != '/') return false;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view seg = path.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    for (char c : seg) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '-' || c == '_';
      if (!ok) return false;
    }
    start = end + 1;
  }
  return true;
}

// name has exactly one more label than ".suffix" (given with its dot, lower case).
bool wildcard_matches(std::string_view suffix, std::string_view name) {
  if (name.size() <= suffix.size()) return false;
  const std::string_view head = name.substr(0, name.size() - suffix.size());
  if (head.find('.') != std::string_view::npos || head.find('*') != std::string_view::npos) {
    return false;
  }
  return iequals(name.substr(name.size() - suffix.size()), suffix);
}

bool host_matches(std::string_view rule_host, std::string_view authority) {
  if (rule_host.empty() || rule_host == "*") return true;
  std::string_view host = authority;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    host = close == std::string_view::npos ? host : host.substr(0, close + 1);
  } else if (const size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);  // "a.b." is "a.b"
  if (rule_host.size() > 2 && rule_host[0] == '*' && rule_host[1] == '.') {
    return wildcard_matches(rule_host.substr(1), host);
  }
  return iequals(rule_host, host);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool unreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// No '%', no "//", no "." or ".." segment: the path is its own normal form. One pass.
bool normal_already(std::string_view path) {
  const size_t n = path.size();
  for (size_t i = 0; i < n; ++i) {
    const char c = path[i];
    if (c == '%') return false;
    if (c != '/' || i + 1 == n) continue;
    const char next = path[i + 1];
    if (next == '/') return false;
    if (next != '.') continue;
    size_t j = i + 2;
    if (j < n && path[j] == '.') ++j;
    if (j == n || path[j] == '/') return false;
  }
  return true;
}

void append_xfcc_value(std::string& out, std::string_view value) {
  if (value.find_first_of(",;=\"") == std::string_view::npos) {
    out += value;
    return;
  }
  out += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

void append_json_list(std::string& out, const std::vector<IdentityPattern>& patterns) {
  out += '[';
  for (size_t i = 0; i < patterns.size(); ++i) {
    out += i ? ",\"" : "\"";
    append_json_escaped(out, patterns[i].text);
    out += '"';
  }
  out += ']';
}

}  // namespace

bool parse_pattern(std::string_view text, IdentityPattern* out, std::string* detail) {
  IdentityPattern p;
  p.text.assign(text);
  const std::string quoted = "identity pattern '" + std::string(text) + "'";
  if (text == "*") {
    p.kind = IdentityPattern::Kind::kAny;
  } else if (text.substr(0, kSpiffe.size()) == kSpiffe) {
    std::string_view rest = text.substr(kSpiffe.size());
    const size_t slash = rest.find('/');
    const std::string_view td = rest.substr(0, slash);
    if (!valid_trust_domain(td)) {
      return fail(detail, quoted +
                              ": the trust domain must be lower-case letters, digits, '.', "
                              "'-' or '_'");
    }
    std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
    if (path.size() >= 2 && path.substr(path.size() - 2) == "/*") {
      path.remove_suffix(1);  // keep the '/': "spiffe://td/" or "spiffe://td/ns/"
      if (path.size() > 1 && !valid_spiffe_path(path.substr(0, path.size() - 1))) {
        return fail(detail, quoted + ": not a SPIFFE ID prefix (spiffe://TRUST-DOMAIN[/PATH]/*)");
      }
      p.kind = IdentityPattern::Kind::kUriPrefix;
      p.value = std::string(kSpiffe) + std::string(td) + std::string(path);
    } else {
      if (!valid_spiffe_path(path)) {
        return fail(detail, quoted +
                                ": not a SPIFFE ID (path segments of letters, digits, '.', '-', "
                                "'_'; none empty, '.' or '..'; '*' only as a last segment)");
      }
      p.kind = IdentityPattern::Kind::kUri;
      p.value.assign(text);
    }
  } else if (text.find("://") != std::string_view::npos) {
    return fail(detail, quoted + ": a URI pattern must be a SPIFFE ID (spiffe://...)");
  } else if (text.size() > 2 && text[0] == '*' && text[1] == '.') {
    if (!valid_dns_name(text.substr(2))) {
      return fail(detail, quoted + ": '" + std::string(text.substr(2)) + "' is not a DNS name");
    }
    p.kind = IdentityPattern::Kind::kDnsWildcard;
    p.value = lowered(text.substr(1));
  } else {
    if (!valid_dns_name(text)) {
      return fail(detail, quoted +
                              ": not a DNS name, *.DOMAIN, spiffe://TRUST-DOMAIN/PATH, "
                              "spiffe://TRUST-DOMAIN/PREFIX/* or *");
    }
    p.kind = IdentityPattern::Kind::kDns;
    p.value = lowered(text);
  }
  *out = std::move(p);
  return true;
}

bool parse_allow_list(std::string_view text, std::vector<IdentityPattern>* out,
                      std::string* detail) {
  std::vector<IdentityPattern> list;
  size_t start = 0;
  while (true) {
    const size_t bar = text.find('|', start);
    const std::string_view item =
        text.substr(start, bar == std::string_view::npos ? std::string_view::npos : bar - start);
    if (item.empty())
      return fail(detail, "empty identity in allow list '" + std::string(text) + "'");
    IdentityPattern p;
    if (!parse_pattern(item, &p, detail)) return false;
    list.push_back(std::move(p));
    if (bar == std::string_view::npos) break;
    start = bar + 1;
  }
  *out = std::move(list);
  return true;
}

bool matches(const IdentityPattern& pattern, const PeerIdentity& identity) {
  switch (pattern.kind) {
    case IdentityPattern::Kind::kAny:
      for (const std::string& s : identity.dns) {
        if (!s.empty()) return true;
      }
      for (const std::string& s : identity.uris) {
        if (!s.empty()) return true;
      }
      return false;
    case IdentityPattern::Kind::kDns:
      for (const std::string& s : identity.dns) {
        if (iequals(s, pattern.value)) return true;
      }
      return false;
    case IdentityPattern::Kind::kDnsWildcard:
      for (const std::string& s : identity.dns) {
        if (wildcard_matches(pattern.value, s)) return true;
      }
      return false;
    case IdentityPattern::Kind::kUri:
      for (const std::string& s : identity.uris) {
        if (s == pattern.value) return true;
      }
      return false;
    case IdentityPattern::Kind::kUriPrefix:
      for (const std::string& s : identity.uris) {
        if (s.size() > pattern.value.size() &&
            s.compare(0, pattern.value.size(), pattern.value) == 0)
          return true;
      }
      return false;
  }
  return false;
}

bool allowed(const std::vector<IdentityPattern>& allow, const PeerIdentity& identity) {
  for (const IdentityPattern& p : allow) {
    if (matches(p, identity)) return true;
  }
  return false;
}

bool parse_rule(std::string_view keys, Rule* out, std::string* detail) {
  Rule rule;
  rule.spec.assign(keys);
  bool have_allow = false, have_host = false, have_path = false, have_method = false;
  size_t start = 0;
  while (start <= keys.size()) {
    size_t comma = keys.find(',', start);
    if (comma == std::string_view::npos) comma = keys.size();
    const std::string_view item = keys.substr(start, comma - start);
    start = comma + 1;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return fail(detail, "'" + std::string(item) + "' is not KEY=VALUE");
    }
    const std::string_view key = item.substr(0, eq);
    const std::string_view value = item.substr(eq + 1);
    auto once = [&](bool& seen) {
      if (seen) return fail(detail, "key '" + std::string(key) + "' given twice");
      seen = true;
      return true;
    };
    if (key == "allow") {
      if (!once(have_allow) || !parse_allow_list(value, &rule.allow, detail)) return false;
    } else if (key == "host") {
      if (!once(have_host)) return false;
      const std::string_view name =
          value.size() > 2 && value[0] == '*' && value[1] == '.' ? value.substr(2) : value;
      if (value != "*" && !valid_dns_name(name)) {
        return fail(detail, "host '" + std::string(value) + "' is not a host name or *.DOMAIN");
      }
      rule.host = value == "*" ? "" : lowered(value);
    } else if (key == "path") {
      if (!once(have_path)) return false;
      std::string scratch;
      if (value.empty() || value.front() != '/' ||
          normalize_path(value, scratch).size() != value.size() || value.find('?') != value.npos) {
        return fail(detail, "path '" + std::string(value) +
                                "' is not a normalized path prefix starting with '/' (no '?', "
                                "'%', '//', '.' or '..' segments)");
      }
      rule.path_prefix.assign(value);
    } else if (key == "method") {
      if (!once(have_method)) return false;
      size_t m = 0;
      while (m <= value.size()) {
        size_t bar = value.find('|', m);
        if (bar == std::string_view::npos) bar = value.size();
        const std::string_view method = value.substr(m, bar - m);
        m = bar + 1;
        bool token = !method.empty();
        for (char c : method) token = token && c >= 'A' && c <= 'Z';
        if (!token) {
          return fail(detail, "method '" + std::string(method) +
                                  "' is not an upper-case method name (GET|POST|...)");
        }
        rule.methods.emplace_back(method);
        const uint32_t bit = method_bit(method);
        rule.method_mask |= bit;
        if (bit == 0) rule.other_methods.emplace_back(method);
      }
    } else {
      return fail(detail,
                  "unknown key '" + std::string(key) + "' (keys: host, path, method, allow)");
    }
  }
  if (!have_allow) return fail(detail, "allow=ID[|ID...] is required");
  *out = std::move(rule);
  return true;
}

std::string_view to_string(Mode mode) { return mode == Mode::kAudit ? "audit" : "enforce"; }

Grant grant(const ListenerPolicy& policy, const PeerIdentity& identity) {
  Grant g;
  g.connection_allowed = !policy.has_allow || allowed(policy.allow, identity);
  for (size_t i = 0; i < policy.rules.size() && i < kMaxRules; ++i) {
    if (allowed(policy.rules[i].allow, identity)) g.rules_allowed |= uint64_t{1} << i;
  }
  return g;
}

uint32_t method_bit(std::string_view method) {
  static constexpr std::string_view kMethods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                                  "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  for (size_t i = 0; i < std::size(kMethods); ++i) {
    if (method == kMethods[i]) return uint32_t{1} << i;
  }
  return 0;
}

int match_rule(const ListenerPolicy& policy, std::string_view authority, std::string_view path,
               std::string_view method, std::string& scratch) {
  if (policy.rules.empty()) return -1;
  const std::string_view normalized = normalize_path(path, scratch);
  const uint32_t bit = method_bit(method);
  for (size_t i = 0; i < policy.rules.size(); ++i) {
    const Rule& rule = policy.rules[i];
    if ((rule.method_mask & bit) == 0 && !rule.methods.empty()) {
      // Not one of its standard methods: it may still list this one by name.
      bool other = false;
      if (bit == 0) {
        for (const std::string& m : rule.other_methods) other = other || m == method;
      }
      if (!other) continue;
    }
    if (!rule.path_prefix.empty() &&
        normalized.substr(0, rule.path_prefix.size()) != rule.path_prefix)
      continue;
    if (!host_matches(rule.host, authority)) continue;
    return static_cast<int>(i);
  }
  return -1;
}

std::string_view normalize_path(std::string_view path, std::string& scratch) {
  if (path.empty() || path.front() != '/' || normal_already(path)) return path;
  // Decode the percent-encoded unreserved bytes (the others stay encoded).
  scratch.clear();
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '%' && i + 2 < path.size() + 0 && hex_value(path[i + 1]) >= 0 &&
        hex_value(path[i + 2]) >= 0) {
      const char c = static_cast<char>(hex_value(path[i + 1]) * 16 + hex_value(path[i + 2]));
      if (unreserved(c)) {
        scratch += c;
        i += 2;
        continue;
      }
    }
    scratch += path[i];
  }
  // Resolve the segments in place: what is written never passes what is read.
  size_t w = 0;
  size_t r = 1;  // after the leading '/'
  const size_t n = scratch.size();
  bool trailing = false;
  while (r <= n) {
    size_t end = scratch.find('/', r);
    if (end == std::string::npos) end = n;
    const size_t len = end - r;
    const bool last = end == n;
    if (len == 0 || (len == 1 && scratch[r] == '.')) {
      trailing = last && w > 0;
    } else if (len == 2 && scratch[r] == '.' && scratch[r + 1] == '.') {
      while (w > 0 && scratch[w - 1] != '/') --w;
      if (w > 0) --w;  // drop the '/' before the popped segment
      trailing = last && w > 0;
    } else {
      scratch[w++] = '/';
      for (size_t k = 0; k < len; ++k) scratch[w++] = scratch[r + k];
      trailing = false;
    }
    r = end + 1;
  }
  if (w == 0 || trailing) scratch[w++] = '/';
  scratch.resize(w);
  return scratch;
}

std::string describe(const PeerIdentity& identity) {
  std::string out;
  for (const std::string& s : identity.uris) out += (out.empty() ? "" : ",") + s;
  for (const std::string& s : identity.dns) out += (out.empty() ? "" : ",") + s;
  return out.empty() ? "-" : out;
}

void append_xfcc(std::string_view by, std::string_view hash_hex, const PeerIdentity& identity,
                 std::string& out) {
  bool first = true;
  auto field = [&](std::string_view key, std::string_view value) {
    if (!first) out += ';';
    first = false;
    out += key;
    out += '=';
    append_xfcc_value(out, value);
  };
  if (!by.empty()) field("By", by);
  field("Hash", hash_hex);
  for (const std::string& uri : identity.uris) field("URI", uri);
  for (const std::string& dns : identity.dns) field("DNS", dns);
}

std::string render_json(std::string_view listener, const ListenerPolicy& policy) {
  std::string out = "{\"listener\":\"";
  append_json_escaped(out, listener);
  out += "\",\"mode\":\"";
  out += to_string(policy.mode);
  out += "\",\"allow\":";
  if (policy.has_allow) {
    append_json_list(out, policy.allow);
  } else {
    out += "null";
  }
  out += ",\"rules\":[";
  for (size_t i = 0; i < policy.rules.size(); ++i) {
    const Rule& rule = policy.rules[i];
    out += i ? ",{\"index\":" : "{\"index\":";
    out += std::to_string(i);
    out += ",\"spec\":\"";
    append_json_escaped(out, rule.spec);
    out += "\",\"host\":\"";
    append_json_escaped(out, rule.host.empty() ? "*" : rule.host);
    out += "\",\"path\":\"";
    append_json_escaped(out, rule.path_prefix.empty() ? "/" : rule.path_prefix);
    out += "\",\"methods\":[";
    for (size_t m = 0; m < rule.methods.size(); ++m) {
      out += m ? ",\"" : "\"";
      append_json_escaped(out, rule.methods[m]);
      out += '"';
    }
    out += "],\"allow\":";
    append_json_list(out, rule.allow);
    out += '}';
  }
  out += "]}";
  return out;
}

}  // namespace ringside::authz
