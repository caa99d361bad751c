// Statistics of the HTTP/1.1 proxy, named after ECS Service Connect's metrics
// (RequestCount, HTTPCode_Target_2XX_Count, ..., TargetResponseTime): kept per listener
// and per upstream service, per worker, written like stats.h (owner thread only, relaxed
// load + store) and rendered for /stats summed over workers. Connection-level metrics
// (active/new connections, processed bytes, TLS negotiation errors) are the listener
// stats of stats.h.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringside/admin.h"
#include "ringside/stats.h"

namespace ringside::http {

// X(field, metric, kind, help). Rendered as ringside_http_listener_<metric>{listener="..."}
// and ringside_http_service_<metric>{service="..."}; the HELP text names the ECS Service
// Connect (CloudWatch) metric a series answers. Metric names follow Prometheus conventions
// (counters end in _total; promtool check metrics runs in the tests); the C++ field keeps
// the Service Connect spelling.
#define RINGSIDE_HTTP_STATS(X)                                                                     \
  X(request_count, requests_total, counter, "HTTP requests received (RequestCount)")               \
  X(http_code_target_2xx_count, http_code_target_2xx_total, counter,                               \
    "2xx responses from the target (HTTPCode_Target_2XX_Count)")                                   \
  X(http_code_target_3xx_count, http_code_target_3xx_total, counter,                               \
    "3xx responses from the target (HTTPCode_Target_3XX_Count)")                                   \
  X(http_code_target_4xx_count, http_code_target_4xx_total, counter,                               \
    "4xx responses from the target (HTTPCode_Target_4XX_Count)")                                   \
  X(http_code_target_5xx_count, http_code_target_5xx_total, counter,                               \
    "5xx responses from the target (HTTPCode_Target_5XX_Count)")                                   \
  X(http_code_proxy_4xx_count, http_code_proxy_4xx_total, counter,                                 \
    "4xx responses made by ringside (400, 408, 413, 431...)")                                      \
  X(http_code_proxy_5xx_count, http_code_proxy_5xx_total, counter,                                 \
    "5xx responses made by ringside (502, 503, 504...)")                                           \
  X(request_retry_count, request_retries_total, counter,                                           \
    "Upstream attempts retried (counted retries)")                                                 \
  X(request_retry_limit_exceeded, request_retry_limit_exceeded_total, counter,                     \
    "Requests that failed after the last allowed retry")                                           \
  X(request_timeout_count, request_timeouts_total, counter, "Requests ended by --request-timeout") \
  X(request_active, request_active, gauge, "HTTP requests in progress")                            \
  X(target_processed_bytes, target_processed_bytes_total, counter,                                 \
    "Body bytes exchanged with the target, both ways")                                             \
  X(upstream_cx_total, upstream_cx_total, counter,                                                 \
    "Upstream connections opened (NewConnectionCount)")                                            \
  X(upstream_cx_active, upstream_cx_active, gauge,                                                 \
    "Upstream connections open now (ActiveConnectionCount)")                                       \
  X(upstream_tls_negotiation_errors, upstream_tls_negotiation_errors_total, counter,               \
    "Upstream TLS handshakes failed (TargetTLSNegotiationErrorCount)")

// Target response time in milliseconds (request head sent to response head received), in
// fixed buckets; each observation touches one bucket and the sum.
class ResponseTimeHistogram {
 public:
  // Upper bounds (le) in milliseconds; a last bucket (+Inf) takes the rest.
  static constexpr std::array<uint64_t, 14> kBoundsMs = {1,   2,   5,    10,   25,   50,    100,
                                                         250, 500, 1000, 2500, 5000, 10000, 30000};
  static constexpr size_t kBuckets = kBoundsMs.size() + 1;

  void record(uint64_t ms) {
    size_t i = 0;
    while (i < kBoundsMs.size() && ms > kBoundsMs[i]) ++i;
    buckets_[i].add();
    sum_ms_.add(ms);
  }
  // Observations in bucket i alone (not cumulative); i == kBoundsMs.size() is +Inf.
  uint64_t bucket(size_t i) const { return buckets_[i].get(); }
  uint64_t sum_ms() const { return sum_ms_.get(); }
  uint64_t count() const {
    uint64_t total = 0;
    for (const Counter& c : buckets_) total += c.get();
    return total;
  }

 private:
  std::array<Counter, kBuckets> buckets_;
  Counter sum_ms_;
};

struct HttpStats {
#define RINGSIDE_DECLARE_STAT(field, metric, kind, help) kind##_t field;
  using counter_t = Counter;
  using gauge_t = Gauge;
  RINGSIDE_HTTP_STATS(RINGSIDE_DECLARE_STAT)
#undef RINGSIDE_DECLARE_STAT
  ResponseTimeHistogram target_response_time;

  // A response from the target: its status class and its response time.
  void record_target_response(uint16_t status, uint64_t response_time_ms);
  // A response ringside made itself (local_status() of a LocalCause).
  void record_proxy_response(uint16_t status);
};

// stats[w][i] belongs to worker w. Sized once at start-up, never resized.
struct HttpStatsRegistry {
  std::vector<std::string> listener_names;        // HTTP listeners, e.g. "egress_127.0.0.1:15080"
  std::vector<std::string> service_names;         // upstream services, e.g. "orders.ns"
  std::vector<std::vector<HttpStats>> listeners;  // [worker][listener]
  std::vector<std::vector<HttpStats>> services;   // [worker][service]

  HttpStatsRegistry(unsigned workers, std::vector<std::string> listener_names_in,
                    std::vector<std::string> service_names_in);
};

// The samples of one histogram series (the family already started): _bucket{le} cumulative
// (le in seconds), _sum in seconds and _count, summed over the given per-worker histograms.
using Labels = std::vector<std::pair<std::string_view, std::string_view>>;
void render_histogram_seconds(std::string_view name, const Labels& labels,
                              const std::vector<const ResponseTimeHistogram*>& histograms,
                              PrometheusWriter& writer);

// Appends every HTTP family (counters, gauges and the histogram as _bucket{le=...}
// cumulative, _sum, _count), summed over workers. Usable as a PrometheusAppender.
void render_http_stats(const HttpStatsRegistry& stats, PrometheusWriter& writer);

}  // namespace ringside::http
