// Prometheus text exposition format 0.0.4 for the stats registry.
#include <charconv>
#include <cmath>

#include "ringside/admin.h"

namespace ringside {

namespace {

void append_escaped_label_value(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

void append_escaped_help(std::string& out, std::string_view help) {
  for (char c : help) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

void append_series(std::string& out, std::string_view name,
                   const std::vector<std::pair<std::string_view, std::string_view>>& labels) {
  out += name;
  if (labels.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& [key, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += key;
    out += "=\"";
    append_escaped_label_value(out, value);
    out += '"';
  }
  out += '}';
}

}  // namespace

void PrometheusWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  append_escaped_help(out_, help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

namespace {

template <typename Integer>
void append_integer_sample(std::string& out, std::string_view name,
                           const std::vector<std::pair<std::string_view, std::string_view>>& labels,
                           Integer value) {
  append_series(out, name, labels);
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

}  // namespace

void PrometheusWriter::sample(
    std::string_view name, const std::vector<std::pair<std::string_view, std::string_view>>& labels,
    int64_t value) {
  append_integer_sample(out_, name, labels, value);
}

void PrometheusWriter::sample(
    std::string_view name, const std::vector<std::pair<std::string_view, std::string_view>>& labels,
    uint64_t value) {
  append_integer_sample(out_, name, labels, value);
}

void PrometheusWriter::sample(
    std::string_view name, const std::vector<std::pair<std::string_view, std::string_view>>& labels,
    double value) {
  append_series(out_, name, labels);
  out_ += ' ';
  if (std::isnan(value)) {
    out_ += "NaN";
  } else if (std::isinf(value)) {
    out_ += value > 0 ? "+Inf" : "-Inf";
  } else {
    // The shortest text that reads back as the same double: 0.1 stays "0.1".
    char text[32];
    const auto written = std::to_chars(text, text + sizeof(text), value);
    out_.append(text, written.ptr);
  }
  out_ += '\n';
}

std::string render_prometheus(const StatsRegistry& stats,
                              const std::vector<PrometheusAppender>& extra) {
  PrometheusWriter writer;
  std::string name;

  // Each sum keeps the stat's own type: uint64_t for counters, int64_t for gauges.
#define RINGSIDE_RENDER_LISTENER_STAT(field, metric, kind, help)                       \
  name = "ringside_listener_" #metric;                                                 \
  writer.family(name, #kind, help);                                                    \
  for (size_t l = 0; l < stats.listener_names.size(); ++l) {                           \
    decltype(stats.listeners[0][0].field.get()) total = 0;                             \
    for (const auto& per_worker : stats.listeners) total += per_worker[l].field.get(); \
    writer.sample(name, {{"listener", stats.listener_names[l]}}, total);               \
  }
  RINGSIDE_LISTENER_STATS(RINGSIDE_RENDER_LISTENER_STAT)
#undef RINGSIDE_RENDER_LISTENER_STAT

#define RINGSIDE_RENDER_WORKER_STAT(field, metric, kind, help)               \
  name = "ringside_worker_" #metric;                                         \
  writer.family(name, #kind, help);                                          \
  for (size_t w = 0; w < stats.workers.size(); ++w) {                        \
    const std::string worker = std::to_string(w);                            \
    writer.sample(name, {{"worker", worker}}, stats.workers[w].field.get()); \
  }
  RINGSIDE_WORKER_STATS(RINGSIDE_RENDER_WORKER_STAT)
#undef RINGSIDE_RENDER_WORKER_STAT

  for (const PrometheusAppender& append : extra) append(writer);
  return writer.take();
}

}  // namespace ringside
