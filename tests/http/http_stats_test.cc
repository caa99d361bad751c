// HTTP statistics: status classes, histogram buckets, and the Prometheus text summed over
// workers (cumulative buckets, _sum, _count).
#include "ringside/http_stats.h"

#include <gtest/gtest.h>

#include <string>

namespace ringside::http {
namespace {

TEST(HttpStats, StatusClasses) {
  HttpStats s;
  s.record_target_response(200, 3);
  s.record_target_response(204, 3);
  s.record_target_response(302, 3);
  s.record_target_response(404, 3);
  s.record_target_response(503, 3);
  s.record_target_response(101, 3);
  s.record_proxy_response(408);
  s.record_proxy_response(504);
  s.record_proxy_response(502);
  EXPECT_EQ(s.http_code_target_2xx_count.get(), 2u);
  EXPECT_EQ(s.http_code_target_3xx_count.get(), 1u);
  EXPECT_EQ(s.http_code_target_4xx_count.get(), 1u);
  EXPECT_EQ(s.http_code_target_5xx_count.get(), 1u);
  EXPECT_EQ(s.http_code_proxy_4xx_count.get(), 1u);
  EXPECT_EQ(s.http_code_proxy_5xx_count.get(), 2u);
  EXPECT_EQ(s.target_response_time.count(), 6u);
}

TEST(ResponseTimeHistogram, BucketEdges) {
  ResponseTimeHistogram h;
  h.record(0);      // le=1
  h.record(1);      // le=1 (bounds are inclusive)
  h.record(2);      // le=2
  h.record(3);      // le=5
  h.record(30000);  // le=30000
  h.record(30001);  // +Inf
  EXPECT_EQ(h.bucket(0), 2u);
  EXPECT_EQ(h.bucket(1), 1u);
  EXPECT_EQ(h.bucket(2), 1u);
  EXPECT_EQ(h.bucket(ResponseTimeHistogram::kBoundsMs.size() - 1), 1u);
  EXPECT_EQ(h.bucket(ResponseTimeHistogram::kBoundsMs.size()), 1u);
  EXPECT_EQ(h.sum_ms(), 0u + 1 + 2 + 3 + 30000 + 30001);
  EXPECT_EQ(h.count(), 6u);
}

TEST(RenderHttpStats, SumsWorkersAndRendersCumulativeHistogram) {
  HttpStatsRegistry registry(2, {"egress_127.0.0.1:15080"}, {"orders.ns", "billing.ns"});
  registry.listeners[0][0].request_count.add(3);
  registry.listeners[1][0].request_count.add(4);
  registry.listeners[0][0].request_active.inc();
  registry.listeners[0][0].target_response_time.record(4);
  registry.listeners[1][0].target_response_time.record(4);
  registry.listeners[1][0].target_response_time.record(70);
  registry.services[1][1].http_code_proxy_5xx_count.add();

  PrometheusWriter writer;
  render_http_stats(registry, writer);
  const std::string& text = writer.text();

  EXPECT_NE(text.find("# TYPE ringside_http_listener_requests_total counter\n"
                      "ringside_http_listener_requests_total{listener=\"egress_127.0.0.1:15080\"} "
                      "7\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE ringside_http_listener_request_active gauge\n"
                      "ringside_http_listener_request_active{listener=\"egress_127.0.0.1:15080\"} "
                      "1\n"),
            std::string::npos);
  const std::string series = "ringside_http_listener_target_response_time_seconds";
  const std::string label = "{listener=\"egress_127.0.0.1:15080\"";
  std::string histogram = "# TYPE " + series + " histogram\n";
  const std::pair<const char*, int> buckets[] = {
      {"0.001", 0}, {"0.002", 0}, {"0.005", 2}, {"0.01", 2}, {"0.025", 2},
      {"0.05", 2},  {"0.1", 3},   {"0.25", 3},  {"0.5", 3},  {"1", 3},
      {"2.5", 3},   {"5", 3},     {"10", 3},    {"30", 3},   {"+Inf", 3}};
  for (const auto& [le, count] : buckets) {
    histogram += series + "_bucket" + label + ",le=\"" + le + "\"} " + std::to_string(count) + "\n";
  }
  histogram += series + "_sum" + label + "} 0.078\n";
  histogram += series + "_count" + label + "} 3\n";
  EXPECT_NE(text.find(histogram), std::string::npos) << text;
  EXPECT_NE(
      text.find("ringside_http_service_http_code_proxy_5xx_total{service=\"orders.ns\"} 0\n"
                "ringside_http_service_http_code_proxy_5xx_total{service=\"billing.ns\"} 1\n"),
      std::string::npos);
  EXPECT_NE(
      text.find(
          "ringside_http_service_target_response_time_seconds_count{service=\"billing.ns\"} 0\n"),
      std::string::npos);
}

}  // namespace
}  // namespace ringside::http
