// HTTP statistics: recording helpers and the Prometheus rendering.
#include "ringside/http_stats.h"

#include <string_view>

namespace ringside::http {

void HttpStats::record_target_response(uint16_t status, uint64_t response_time_ms) {
  switch (status / 100) {
    case 2:
      http_code_target_2xx_count.add();
      break;
    case 3:
      http_code_target_3xx_count.add();
      break;
    case 4:
      http_code_target_4xx_count.add();
      break;
    case 5:
      http_code_target_5xx_count.add();
      break;
    default:
      break;  // 1xx: interim, 101 switches to a tunnel; not a final HTTP answer
  }
  target_response_time.record(response_time_ms);
}

void HttpStats::record_proxy_response(uint16_t status) {
  if (status / 100 == 4) http_code_proxy_4xx_count.add();
  if (status / 100 == 5) http_code_proxy_5xx_count.add();
}

HttpStatsRegistry::HttpStatsRegistry(unsigned workers, std::vector<std::string> listener_names_in,
                                     std::vector<std::string> service_names_in)
    : listener_names(std::move(listener_names_in)),
      service_names(std::move(service_names_in)),
      listeners(workers),
      services(workers) {
  for (auto& per_worker : listeners) per_worker = std::vector<HttpStats>(listener_names.size());
  for (auto& per_worker : services) per_worker = std::vector<HttpStats>(service_names.size());
}

namespace {

// A whole number of milliseconds as a decimal number of seconds without trailing zeros,
// exact (no floating point): 1 -> "0.001", 250 -> "0.25", 30000 -> "30".
std::string ms_as_seconds(uint64_t ms) {
  std::string out = std::to_string(ms / 1000);
  uint64_t fraction = ms % 1000;
  if (fraction == 0) return out;
  std::string digits = std::to_string(fraction);
  digits.insert(0, 3 - digits.size(), '0');
  while (digits.back() == '0') digits.pop_back();
  return out + "." + digits;
}

// One scope: "listener" or "service", its names and its [worker][index] stats.
void render_scope(std::string_view scope, std::string_view label,
                  const std::vector<std::string>& names,
                  const std::vector<std::vector<HttpStats>>& stats, PrometheusWriter& writer) {
  const std::string prefix = "ringside_http_" + std::string(scope) + "_";
  std::string name;

#define RINGSIDE_RENDER_HTTP_STAT(field, metric, kind, help)                 \
  name = prefix + #metric;                                                   \
  writer.family(name, #kind, help);                                          \
  for (size_t i = 0; i < names.size(); ++i) {                                \
    decltype(stats[0][0].field.get()) total = 0;                             \
    for (const auto& per_worker : stats) total += per_worker[i].field.get(); \
    writer.sample(name, {{label, names[i]}}, total);                         \
  }
  RINGSIDE_HTTP_STATS(RINGSIDE_RENDER_HTTP_STAT)
#undef RINGSIDE_RENDER_HTTP_STAT

  // Recorded in milliseconds, exposed in seconds (Prometheus base units): le and _sum are
  // the millisecond values divided by 1000.
  name = prefix + "target_response_time_seconds";
  writer.family(name, "histogram",
                "Target response time in seconds, request sent to response head "
                "(TargetResponseTime)");
  std::vector<const ResponseTimeHistogram*> histograms;
  for (size_t i = 0; i < names.size(); ++i) {
    histograms.clear();
    for (const auto& per_worker : stats) histograms.push_back(&per_worker[i].target_response_time);
    render_histogram_seconds(name, {{label, names[i]}}, histograms, writer);
  }
}

}  // namespace

void render_histogram_seconds(std::string_view name, const Labels& labels,
                              const std::vector<const ResponseTimeHistogram*>& histograms,
                              PrometheusWriter& writer) {
  const std::string bucket_name = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  uint64_t sum_ms = 0;
  Labels with_le = labels;
  with_le.emplace_back("le", "");
  for (size_t b = 0; b < ResponseTimeHistogram::kBuckets; ++b) {
    for (const ResponseTimeHistogram* h : histograms) cumulative += h->bucket(b);
    const std::string le = b < ResponseTimeHistogram::kBoundsMs.size()
                               ? ms_as_seconds(ResponseTimeHistogram::kBoundsMs[b])
                               : std::string("+Inf");
    with_le.back().second = le;
    writer.sample(bucket_name, with_le, cumulative);
  }
  for (const ResponseTimeHistogram* h : histograms) sum_ms += h->sum_ms();
  writer.sample(std::string(name) + "_sum", labels, static_cast<double>(sum_ms) / 1000.0);
  // _count equals the +Inf bucket: both come from the same bucket reads.
  writer.sample(std::string(name) + "_count", labels, cumulative);
}

void render_http_stats(const HttpStatsRegistry& stats, PrometheusWriter& writer) {
  render_scope("listener", "listener", stats.listener_names, stats.listeners, writer);
  render_scope("service", "service", stats.service_names, stats.services, writer);
}

}  // namespace ringside::http
