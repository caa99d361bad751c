#include "ringside/authz.h"

#include <gtest/gtest.h>

namespace ringside::authz {
namespace {

IdentityPattern pattern(std::string_view text) {
  IdentityPattern p;
  std::string detail;
  EXPECT_TRUE(parse_pattern(text, &p, &detail)) << text << ": " << detail;
  return p;
}

std::string bad(std::string_view text) {
  IdentityPattern p;
  std::string detail;
  EXPECT_FALSE(parse_pattern(text, &p, &detail)) << text;
  return detail;
}

PeerIdentity dns(std::vector<std::string> names) { return PeerIdentity{std::move(names), {}}; }
PeerIdentity uri(std::vector<std::string> ids) { return PeerIdentity{{}, std::move(ids)}; }

TEST(IdentityPattern, DnsExactIsCaseInsensitiveAndWhole) {
  const IdentityPattern p = pattern("Orders.Sample-Namespace");
  EXPECT_EQ(p.kind, IdentityPattern::Kind::kDns);
  EXPECT_TRUE(matches(p, dns({"orders.sample-namespace"})));
  EXPECT_TRUE(matches(p, dns({"x.other", "ORDERS.sample-namespace"})));
  EXPECT_FALSE(matches(p, dns({"orders.sample-namespace.evil"})));
  EXPECT_FALSE(matches(p, dns({"xorders.sample-namespace"})));
  EXPECT_FALSE(matches(p, dns({"*.sample-namespace"})));  // a wildcard cert is not orders
  EXPECT_FALSE(matches(p, uri({"orders.sample-namespace"})));
}

TEST(IdentityPattern, DnsWildcardTakesExactlyOneMoreLabel) {
  const IdentityPattern p = pattern("*.sample-namespace");
  EXPECT_EQ(p.kind, IdentityPattern::Kind::kDnsWildcard);
  EXPECT_TRUE(matches(p, dns({"orders.sample-namespace"})));
  EXPECT_TRUE(matches(p, dns({"Orders.SAMPLE-namespace"})));
  EXPECT_FALSE(matches(p, dns({"sample-namespace"})));
  EXPECT_FALSE(matches(p, dns({".sample-namespace"})));
  EXPECT_FALSE(matches(p, dns({"a.b.sample-namespace"})));
  EXPECT_FALSE(matches(p, dns({"orders.other-namespace"})));
  EXPECT_FALSE(matches(p, dns({"*.sample-namespace"})));
  EXPECT_FALSE(matches(p, dns({"orderssample-namespace"})));
}

TEST(IdentityPattern, SpiffeExactIsByteForByte) {
  const IdentityPattern p = pattern("spiffe://example.org/ns/prod/sa/orders");
  EXPECT_EQ(p.kind, IdentityPattern::Kind::kUri);
  EXPECT_TRUE(matches(p, uri({"spiffe://example.org/ns/prod/sa/orders"})));
  EXPECT_FALSE(matches(p, uri({"spiffe://example.org/ns/prod/sa/orders2"})));
  EXPECT_FALSE(matches(p, uri({"spiffe://example.org/ns/prod/sa/Orders"})));
  EXPECT_FALSE(matches(p, uri({"spiffe://example.org/ns/prod/sa"})));
  EXPECT_FALSE(matches(p, dns({"spiffe://example.org/ns/prod/sa/orders"})));
}

TEST(IdentityPattern, SpiffePrefixIsTrustDomainOrPathPrefix) {
  const IdentityPattern td = pattern("spiffe://example.org/*");
  EXPECT_EQ(td.kind, IdentityPattern::Kind::kUriPrefix);
  EXPECT_EQ(td.value, "spiffe://example.org/");
  EXPECT_TRUE(matches(td, uri({"spiffe://example.org/ns/a"})));
  EXPECT_FALSE(matches(td, uri({"spiffe://example.org"})));
  EXPECT_FALSE(matches(td, uri({"spiffe://example.org.evil/ns/a"})));
  EXPECT_FALSE(matches(td, uri({"spiffe://other.org/ns/a"})));
  const IdentityPattern ns = pattern("spiffe://example.org/ns/prod/*");
  EXPECT_TRUE(matches(ns, uri({"spiffe://example.org/ns/prod/sa/x"})));
  EXPECT_FALSE(matches(ns, uri({"spiffe://example.org/ns/production/sa/x"})));
  EXPECT_FALSE(matches(ns, uri({"spiffe://example.org/ns/prod/"})));
}

TEST(IdentityPattern, AnyNeedsSomeSan) {
  const IdentityPattern p = pattern("*");
  EXPECT_TRUE(matches(p, dns({"a.b"})));
  EXPECT_TRUE(matches(p, uri({"spiffe://td/x"})));
  EXPECT_FALSE(matches(p, PeerIdentity{}));  // no SAN (a CN only): never an identity
}

TEST(IdentityPattern, NoSanNeverMatches) {
  const PeerIdentity none;
  for (const char* text : {"a.b", "*.b", "spiffe://td/x", "spiffe://td/*", "*"}) {
    EXPECT_FALSE(matches(pattern(text), none)) << text;
  }
}

TEST(IdentityPattern, MalformedOnesSayWhy) {
  EXPECT_NE(bad("").find("not a DNS name"), std::string::npos);
  EXPECT_NE(bad("orders..ns").find("not a DNS name"), std::string::npos);
  bad("*orders.ns");
  bad("a*.ns");
  bad("*.");
  bad("*.*.ns");
  bad("orders.ns/x");
  EXPECT_NE(bad("spiffe://Example.org/x").find("trust domain"), std::string::npos);
  bad("spiffe:///x");
  bad("spiffe://td/a//b");
  bad("spiffe://td/a/../b");
  bad("spiffe://td/a*");
  bad("spiffe://td/*/x");
  bad("spiffe://td/a/");
  EXPECT_NE(bad("https://td/a").find("SPIFFE"), std::string::npos);
}

TEST(AllowList, BarSeparatedAndNoEmptyItem) {
  std::vector<IdentityPattern> list;
  std::string detail;
  ASSERT_TRUE(parse_allow_list("a.ns|*.other|spiffe://td/x", &list, &detail));
  ASSERT_EQ(list.size(), 3u);
  EXPECT_TRUE(allowed(list, dns({"b.other"})));
  EXPECT_TRUE(allowed(list, uri({"spiffe://td/x"})));
  EXPECT_FALSE(allowed(list, dns({"b.ns"})));
  EXPECT_FALSE(parse_allow_list("a.ns||b.ns", &list, &detail));
  EXPECT_FALSE(parse_allow_list("", &list, &detail));
  EXPECT_FALSE(parse_allow_list("a.ns|", &list, &detail));
}

Rule rule(std::string_view text) {
  Rule r;
  std::string detail;
  EXPECT_TRUE(parse_rule(text, &r, &detail)) << text << ": " << detail;
  return r;
}

std::string bad_rule(std::string_view text) {
  Rule r;
  std::string detail;
  EXPECT_FALSE(parse_rule(text, &r, &detail)) << text;
  return detail;
}

TEST(Rule, ParsesKeysInAnyOrder) {
  const Rule r = rule("allow=spiffe://td/*|a.ns,method=GET|POST,path=/api,host=*.Example.com");
  EXPECT_EQ(r.host, "*.example.com");
  EXPECT_EQ(r.path_prefix, "/api");
  EXPECT_EQ(r.methods, (std::vector<std::string>{"GET", "POST"}));
  EXPECT_EQ(r.allow.size(), 2u);
}

TEST(Rule, BadOnesSayWhy) {
  EXPECT_NE(bad_rule("path=/a").find("allow"), std::string::npos);
  EXPECT_NE(bad_rule("allow=a.ns,colour=red").find("unknown key 'colour'"), std::string::npos);
  EXPECT_NE(bad_rule("allow=a.ns,allow=b.ns").find("twice"), std::string::npos);
  EXPECT_NE(bad_rule("allow=a.ns,method=get").find("method"), std::string::npos);
  EXPECT_NE(bad_rule("allow=a.ns,path=api").find("path"), std::string::npos);
  EXPECT_NE(bad_rule("allow=a.ns,path=/a/../b").find("path"), std::string::npos);
  EXPECT_NE(bad_rule("allow=a.ns,host=a b").find("host"), std::string::npos);
  EXPECT_NE(bad_rule("allow=a..ns").find("a..ns"), std::string::npos);
  bad_rule("allow=a.ns,junk");
}

ListenerPolicy policy(std::vector<std::string_view> rules) {
  ListenerPolicy p;
  for (std::string_view r : rules) p.rules.push_back(rule(r));
  return p;
}

TEST(MatchRule, FirstMatchingRuleByMethodPathAndHost) {
  const ListenerPolicy p = policy({"path=/admin,allow=ops.ns", "method=POST|DELETE,allow=w.ns",
                                   "host=api.ns,path=/v1,allow=*"});
  std::string scratch;
  EXPECT_EQ(match_rule(p, "x", "/admin/users", "GET", scratch), 0);
  EXPECT_EQ(match_rule(p, "x", "/admin", "POST", scratch), 0);
  EXPECT_EQ(match_rule(p, "x", "/orders", "POST", scratch), 1);
  EXPECT_EQ(match_rule(p, "x", "/orders", "GET", scratch), -1);
  EXPECT_EQ(match_rule(p, "API.ns:15443", "/v1/x", "GET", scratch), 2);
  EXPECT_EQ(match_rule(p, "api.ns.", "/v1/x", "GET", scratch), 2);
  EXPECT_EQ(match_rule(p, "other.ns", "/v1/x", "GET", scratch), -1);
  EXPECT_EQ(match_rule(ListenerPolicy{}, "x", "/admin", "GET", scratch), -1);
}

TEST(MatchRule, StandardAndOtherMethods) {
  const ListenerPolicy p = policy({"method=PURGE|GET,allow=a.ns", "method=PATCH,allow=a.ns"});
  std::string scratch;
  EXPECT_EQ(match_rule(p, "h", "/", "GET", scratch), 0);
  EXPECT_EQ(match_rule(p, "h", "/", "PURGE", scratch), 0);
  EXPECT_EQ(match_rule(p, "h", "/", "PATCH", scratch), 1);
  EXPECT_EQ(match_rule(p, "h", "/", "POST", scratch), -1);
  EXPECT_EQ(match_rule(p, "h", "/", "PURGEX", scratch), -1);
  EXPECT_EQ(match_rule(p, "h", "/", "get", scratch), -1);  // methods are case-sensitive
  EXPECT_EQ(method_bit("GET"), 1u);
  EXPECT_EQ(method_bit("PURGE"), 0u);
}

TEST(MatchRule, UnnormalizedPathsMeetTheRuleForTheirNormalForm) {
  const ListenerPolicy p = policy({"path=/admin,allow=ops.ns"});
  std::string scratch;
  for (const char* path : {"//admin", "/./admin", "/x/../admin", "/%61dmin", "/%61%64min/x",
                           "/a/b/../../admin/", "/../admin"}) {
    EXPECT_EQ(match_rule(p, "h", path, "GET", scratch), 0) << path;
  }
  EXPECT_EQ(match_rule(p, "h", "/%2Fadmin", "GET", scratch), -1);  // %2F stays encoded
}

TEST(NormalizePath, Rfc3986DotSegmentsAndSlashes) {
  std::string scratch;
  EXPECT_EQ(normalize_path("/a/b", scratch), "/a/b");
  EXPECT_EQ(normalize_path("/a/./b", scratch), "/a/b");
  EXPECT_EQ(normalize_path("/a/../b", scratch), "/b");
  EXPECT_EQ(normalize_path("/a/..", scratch), "/");
  EXPECT_EQ(normalize_path("/a/b/..", scratch), "/a/");
  EXPECT_EQ(normalize_path("/..", scratch), "/");
  EXPECT_EQ(normalize_path("//", scratch), "/");
  EXPECT_EQ(normalize_path("/a//b/", scratch), "/a/b/");
  EXPECT_EQ(normalize_path("/a/.b/..c", scratch), "/a/.b/..c");
  EXPECT_EQ(normalize_path("/%7Eu%20x", scratch), "/~u%20x");
  EXPECT_EQ(normalize_path("*", scratch), "*");
}

TEST(Grant, OneBitPerRuleAndTheListenerList) {
  ListenerPolicy p = policy({"allow=a.ns", "allow=spiffe://td/*", "allow=*.ns"});
  p.has_allow = true;
  std::string detail;
  ASSERT_TRUE(parse_allow_list("a.ns|spiffe://td/x", &p.allow, &detail));
  Grant g = grant(p, dns({"a.ns"}));
  EXPECT_TRUE(g.connection_allowed);
  EXPECT_EQ(g.rules_allowed, 0b101u);
  g = grant(p, uri({"spiffe://td/x"}));
  EXPECT_TRUE(g.connection_allowed);
  EXPECT_EQ(g.rules_allowed, 0b010u);
  g = grant(p, dns({"b.other"}));
  EXPECT_FALSE(g.connection_allowed);
  EXPECT_EQ(g.rules_allowed, 0u);
  p.has_allow = false;
  EXPECT_TRUE(grant(p, PeerIdentity{}).connection_allowed);
}

TEST(Xfcc, EnvoyFormatQuotingWhatNeedsIt) {
  std::string out;
  append_xfcc("spiffe://td/me", "abcd",
              PeerIdentity{{"a.ns", "b.ns"}, {"spiffe://td/x", "urn:a=b;c"}}, out);
  EXPECT_EQ(out,
            "By=spiffe://td/me;Hash=abcd;URI=spiffe://td/x;URI=\"urn:a=b;c\";DNS=a.ns;DNS=b.ns");
  out.clear();
  append_xfcc("", "ff", dns({"a.ns"}), out);
  EXPECT_EQ(out, "Hash=ff;DNS=a.ns");
}

TEST(Describe, UrisThenDnsNamesOrADash) {
  EXPECT_EQ(describe(PeerIdentity{{"a.ns"}, {"spiffe://td/x"}}), "spiffe://td/x,a.ns");
  EXPECT_EQ(describe(PeerIdentity{}), "-");
}

TEST(RenderJson, ShowsModeListAndRules) {
  ListenerPolicy p = policy({"path=/admin,method=GET,allow=ops.ns"});
  p.mode = Mode::kAudit;
  EXPECT_EQ(render_json("ingress_x", p),
            "{\"listener\":\"ingress_x\",\"mode\":\"audit\",\"allow\":null,\"rules\":[{\"index\":0,"
            "\"spec\":\"path=/admin,method=GET,allow=ops.ns\",\"host\":\"*\",\"path\":\"/admin\","
            "\"methods\":[\"GET\"],\"allow\":[\"ops.ns\"]}]}");
}

}  // namespace
}  // namespace ringside::authz
