// Authorization by peer identity (docs/authz.md): who may call an ingress listener, and
// which routes of an HTTP ingress each caller may use. An identity is what the verified
// client certificate carries: its DNS SANs and its URI SANs (SPIFFE IDs among them); a CN
// is never an identity. The policy is matched once per connection, when the handshake
// verifies the client's certificate (grant()); a request then only finds its rule
// (match_rule()) and tests one bit of the connection's grant: nothing is allocated per
// request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ringside::authz {

// The identities a verified certificate carries.
struct PeerIdentity {
  std::vector<std::string> dns;   // DNS SANs, as in the certificate
  std::vector<std::string> uris;  // URI SANs, as in the certificate
};

// One entry of an allow-list:
//   orders.sample-namespace       a DNS SAN, exactly (ASCII case-insensitive)
//   *.sample-namespace            any DNS SAN of one more label: orders.sample-namespace,
//                                 never sample-namespace itself nor a.b.sample-namespace
//   spiffe://td/ns/prod/sa/orders a URI SAN, exactly (byte for byte, as SPIFFE compares)
//   spiffe://td/*                 any SPIFFE ID of trust domain td; spiffe://td/ns/prod/*
//                                 any whose path starts with /ns/prod/
//   *                             any verified identity (a certificate with some SAN)
struct IdentityPattern {
  enum class Kind : uint8_t { kAny, kDns, kDnsWildcard, kUri, kUriPrefix };
  Kind kind = Kind::kAny;
  std::string text;   // as written
  std::string value;  // kDns: the name in lower case; kDnsWildcard: ".suffix" in lower case;
                      // kUri: the ID; kUriPrefix: the ID up to and including its last '/'
};

// Parses one pattern; false and detail (one line) when malformed.
bool parse_pattern(std::string_view text, IdentityPattern* out, std::string* detail);
// Parses a '|'-separated list of patterns (at least one).
bool parse_allow_list(std::string_view text, std::vector<IdentityPattern>* out,
                      std::string* detail);

bool matches(const IdentityPattern& pattern, const PeerIdentity& identity);
// True when any pattern matches.
bool allowed(const std::vector<IdentityPattern>& allow, const PeerIdentity& identity);

// One --authz-rule: requests to host, under path, with one of methods, may come only from
// identities in allow. An empty host, path or method list matches every request.
struct Rule {
  std::string spec;                  // as written after the listener (for /authz and errors)
  std::string host;                  // lower case, no port: "api.ns" or "*.ns" (one more label)
  std::string path_prefix;           // a byte prefix of the normalized path (normalize_path)
  std::vector<std::string> methods;  // exact, case-sensitive (RFC 9110 9.1)
  std::vector<IdentityPattern> allow;
  // methods, precompiled: a bit per standard method (method_bit), and the others by name.
  uint32_t method_mask = 0;
  std::vector<std::string> other_methods;
};

// The bit of a standard method (GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE,
// PATCH), 0 for any other.
uint32_t method_bit(std::string_view method);

// Parses "host=H,path=/P,method=GET|POST,allow=ID|ID" (allow required, the others
// optional, any order). False and detail when malformed.
bool parse_rule(std::string_view keys, Rule* out, std::string* detail);

// enforce: refuse what is not allowed; audit: log and count "would deny", let it pass.
enum class Mode : uint8_t { kEnforce, kAudit };
std::string_view to_string(Mode mode);

// A listener's rules are tested in order and matched in a 64-bit mask.
inline constexpr size_t kMaxRules = 64;

// The policy of one ingress listener.
struct ListenerPolicy {
  bool has_allow = false;              // allow= was given: only these identities connect
  std::vector<IdentityPattern> allow;  // the listener's allow-list
  std::vector<Rule> rules;             // HTTP listeners: the first matching rule decides
  Mode mode = Mode::kEnforce;
  bool active() const { return has_allow || !rules.empty(); }
};

// What one connection's identity may do, decided once when its certificate verified.
struct Grant {
  bool connection_allowed = true;  // the listener's allow-list (true when it has none)
  uint64_t rules_allowed = 0;      // bit i: the identity is in rules[i].allow
};

Grant grant(const ListenerPolicy& policy, const PeerIdentity& identity);

// The index of the first rule matching the request, or -1 (then the listener's allow-list,
// already passed, decides: the request is allowed). authority may carry a port; path is
// the request-target's path without its query. scratch holds a normalized copy of a path
// that needs one; a warm scratch string means no allocation.
int match_rule(const ListenerPolicy& policy, std::string_view authority, std::string_view path,
               std::string_view method, std::string& scratch);

// The path a rule's prefix is compared with: percent-encoded unreserved bytes decoded
// ("%61" -> "a"), "." and ".." segments resolved, runs of '/' merged (RFC 3986 6.2.2), so
// that "/a/../admin" and "//admin" and "/%61dmin" all meet a rule for "/admin". A path
// already in that form is returned as is; otherwise the result is built in scratch.
std::string_view normalize_path(std::string_view path, std::string& scratch);

// "spiffe://td/ns/orders,orders.ns" (URI SANs first, then DNS SANs), or "-" when none:
// the identity as logs and the access log show it.
std::string describe(const PeerIdentity& identity);

// Appends an x-forwarded-client-cert element (Envoy's format): By=<by>;Hash=<hash>;URI=<uri>
// (each URI SAN);DNS=<dns> (each DNS SAN). Values holding ',', ';', '=' or '"' are
// double-quoted with '"' escaped; by empty: no By.
void append_xfcc(std::string_view by, std::string_view hash_hex, const PeerIdentity& identity,
                 std::string& out);

// A policy as JSON, for the /authz admin page.
std::string render_json(std::string_view listener, const ListenerPolicy& policy);

}  // namespace ringside::authz
