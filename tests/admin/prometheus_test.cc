#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>

#include "ringside/admin.h"

namespace ringside {
namespace {

// Checks the exposition text line by line the way a scraper reads it and returns
// series -> value. Fails the test on any line a Prometheus parser would reject, on a
// sample without a preceding # TYPE of its family, or on a family declared twice.
std::map<std::string, std::string> parse_exposition(const std::string& text) {
  static const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) [^\n]*)");
  static const std::regex type(
      R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
  static const std::regex sample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|NaN|[+-]Inf))");
  std::map<std::string, std::string> values;
  std::set<std::string> typed, helped;
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  std::istringstream lines(text);
  std::string line;
  std::smatch m;
  while (std::getline(lines, line)) {
    if (std::regex_match(line, m, help)) {
      EXPECT_TRUE(helped.insert(m[1]).second) << "second HELP: " << line;
    } else if (std::regex_match(line, m, type)) {
      EXPECT_TRUE(typed.insert(m[1]).second) << "second TYPE: " << line;
      EXPECT_EQ(helped.count(m[1]), 1u) << "TYPE before HELP: " << line;
    } else if (std::regex_match(line, m, sample)) {
      EXPECT_EQ(typed.count(m[1]), 1u) << "sample before its TYPE: " << line;
      const std::string series = std::string(m[1]) + std::string(m[2]);
      EXPECT_TRUE(values.emplace(series, m[3]).second) << "duplicate series: " << line;
    } else {
      ADD_FAILURE() << "not a Prometheus line: '" << line << "'";
    }
  }
  return values;
}

TEST(RenderPrometheusTest, SumsListenerStatsOverWorkers) {
  StatsRegistry stats(3, {"ingress_0.0.0.0:15443", "egress_127.0.0.1:15080"});
  stats.listeners[0][0].cx_total.add(5);
  stats.listeners[1][0].cx_total.add(7);
  stats.listeners[2][0].cx_total.add(1);
  stats.listeners[1][1].cx_total.add(2);
  stats.listeners[0][0].cx_active.add(3);
  stats.listeners[2][0].cx_active.add(-1);
  stats.listeners[0][1].downstream_bytes_rx.add(uint64_t{1} << 40);
  stats.listeners[1][1].downstream_bytes_rx.add(uint64_t{1} << 40);

  const std::map<std::string, std::string> values = parse_exposition(render_prometheus(stats));
  EXPECT_EQ(values.at(R"(ringside_listener_cx_total{listener="ingress_0.0.0.0:15443"})"), "13");
  EXPECT_EQ(values.at(R"(ringside_listener_cx_total{listener="egress_127.0.0.1:15080"})"), "2");
  EXPECT_EQ(values.at(R"(ringside_listener_cx_active{listener="ingress_0.0.0.0:15443"})"), "2");
  EXPECT_EQ(
      values.at(
          R"(ringside_listener_downstream_rx_bytes_total{listener="egress_127.0.0.1:15080"})"),
      "2199023255552");
  EXPECT_EQ(
      values.at(
          R"(ringside_listener_tls_handshake_failure_total{listener="egress_127.0.0.1:15080"})"),
      "0");
}

TEST(RenderPrometheusTest, EveryStatEveryListenerAndWorker) {
  StatsRegistry stats(2, {"a", "b", "c"});
  stats.workers[1].loop_iterations.add(42);
  stats.workers[0].accept_errors.add(1);
  const std::string text = render_prometheus(stats);
  const std::map<std::string, std::string> values = parse_exposition(text);

  size_t listener_families = 0, worker_families = 0;
#define EXPECT_LISTENER_STAT(field, name, kind, help)                                           \
  ++listener_families;                                                                          \
  EXPECT_NE(text.find("# HELP ringside_listener_" #name " " help                                \
                      "\n# TYPE ringside_listener_" #name " " #kind "\n"),                      \
            std::string::npos)                                                                  \
      << #name;                                                                                 \
  for (const char* l : {"a", "b", "c"}) {                                                       \
    EXPECT_EQ(values.count("ringside_listener_" #name "{listener=\"" + std::string(l) + "\"}"), \
              1u)                                                                               \
        << #name << " " << l;                                                                   \
  }
  RINGSIDE_LISTENER_STATS(EXPECT_LISTENER_STAT)
#undef EXPECT_LISTENER_STAT
#define EXPECT_WORKER_STAT(field, name, kind, help)                                        \
  ++worker_families;                                                                       \
  EXPECT_NE(text.find("# TYPE ringside_worker_" #name " " #kind "\n"), std::string::npos); \
  EXPECT_EQ(values.count("ringside_worker_" #name "{worker=\"0\"}"), 1u) << #name;         \
  EXPECT_EQ(values.count("ringside_worker_" #name "{worker=\"1\"}"), 1u) << #name;
  RINGSIDE_WORKER_STATS(EXPECT_WORKER_STAT)
#undef EXPECT_WORKER_STAT

  EXPECT_EQ(values.size(), listener_families * 3 + worker_families * 2);
  EXPECT_EQ(values.at(R"(ringside_worker_loop_iterations_total{worker="1"})"), "42");
  EXPECT_EQ(values.at(R"(ringside_worker_loop_iterations_total{worker="0"})"), "0");
  EXPECT_EQ(values.at(R"(ringside_worker_accept_errors_total{worker="0"})"), "1");
}

TEST(RenderPrometheusTest, NoListenersStillRendersFamilies) {
  StatsRegistry stats(1, {});
  const std::map<std::string, std::string> values = parse_exposition(render_prometheus(stats));
  EXPECT_EQ(values.count(R"(ringside_worker_loop_iterations_total{worker="0"})"), 1u);
}

TEST(RenderPrometheusTest, EscapesLabelValues) {
  StatsRegistry stats(1, {"odd \"name\" with \\ and\nnewline"});
  stats.listeners[0][0].cx_total.add(9);
  const std::map<std::string, std::string> values = parse_exposition(render_prometheus(stats));
  EXPECT_EQ(
      values.at(R"(ringside_listener_cx_total{listener="odd \"name\" with \\ and\nnewline"})"),
      "9");
}

TEST(RenderPrometheusTest, ExtraAppendersRunInOrder) {
  StatsRegistry stats(1, {"l"});
  std::vector<PrometheusAppender> extra;
  extra.push_back([](PrometheusWriter& w) {
    w.family("ringside_cert_generation", "gauge", "Live certificate generations");
    w.sample("ringside_cert_generation", {{"listener", "l"}, {"state", "current"}}, int64_t{3});
  });
  extra.push_back([](PrometheusWriter& w) {
    w.family("ringside_cert_expiry_seconds", "gauge", "Seconds until the certificate expires");
    w.sample("ringside_cert_expiry_seconds", {}, 86399.5);
    w.family("ringside_cert_rotations", "counter", "Rotations");
    w.sample("ringside_cert_rotations", {}, uint64_t{18446744073709551615u});
  });
  const std::string text = render_prometheus(stats, extra);
  const std::map<std::string, std::string> values = parse_exposition(text);
  EXPECT_EQ(values.at(R"(ringside_cert_generation{listener="l",state="current"})"), "3");
  EXPECT_EQ(values.at("ringside_cert_expiry_seconds"), "86399.5");
  EXPECT_EQ(values.at("ringside_cert_rotations"), "18446744073709551615");
  EXPECT_LT(text.find("ringside_cert_generation"), text.find("ringside_cert_expiry_seconds"));
  EXPECT_LT(text.find("ringside_worker_loop_iterations_total"),
            text.find("ringside_cert_generation"));
}

// The naming rules `promtool check metrics` enforces (tests/integration/test_prometheus.py
// runs the real promtool on a live /stats): a counter ends in _total, and _count, _sum
// and _bucket belong to histograms and summaries only.
TEST(RenderPrometheusTest, NamesFollowPrometheusConventions) {
  StatsRegistry stats(1, {"l"});
  const std::string text = render_prometheus(stats);
  static const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge))");
  const auto ends_with = [](const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix.data(), suffix.size()) == 0;
  };
  size_t families = 0;
  for (std::sregex_iterator it(text.begin(), text.end(), type), end; it != end; ++it, ++families) {
    const std::string name = (*it)[1];
    if ((*it)[2] == "counter") {
      EXPECT_TRUE(ends_with(name, "_total")) << name;
    }
    for (std::string_view reserved : {"_count", "_sum", "_bucket"})
      EXPECT_FALSE(ends_with(name, reserved)) << name;
    EXPECT_EQ(name.find("_ms"), std::string::npos) << name << ": base units (seconds)";
  }
  EXPECT_GT(families, 10u);
}

TEST(PrometheusWriterTest, ShortestRoundTripFloats) {
  PrometheusWriter w;
  w.family("x_seconds", "gauge", "h");
  w.sample("x_seconds", {{"k", "a"}}, 0.1);
  w.sample("x_seconds", {{"k", "b"}}, 12.345);
  w.sample("x_seconds", {{"k", "c"}}, 30.0);
  EXPECT_EQ(w.text(),
            "# HELP x_seconds h\n# TYPE x_seconds gauge\n"
            "x_seconds{k=\"a\"} 0.1\nx_seconds{k=\"b\"} 12.345\nx_seconds{k=\"c\"} 30\n");
}

TEST(PrometheusWriterTest, SpecialFloatsAndHelpEscaping) {
  PrometheusWriter w;
  w.family("x", "gauge", "line one\nback\\slash");
  w.sample("x", {{"k", "nan"}}, std::numeric_limits<double>::quiet_NaN());
  w.sample("x", {{"k", "inf"}}, std::numeric_limits<double>::infinity());
  w.sample("x", {{"k", "neg"}}, -std::numeric_limits<double>::infinity());
  w.sample("x", {{"k", "neg_int"}}, int64_t{-4});
  EXPECT_EQ(w.text(),
            "# HELP x line one\\nback\\\\slash\n# TYPE x gauge\n"
            "x{k=\"nan\"} NaN\nx{k=\"inf\"} +Inf\nx{k=\"neg\"} -Inf\nx{k=\"neg_int\"} -4\n");
  const std::map<std::string, std::string> values = parse_exposition(w.text());
  EXPECT_EQ(values.size(), 4u);
}

}  // namespace
}  // namespace ringside
