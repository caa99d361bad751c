// gRPC statistics per service and method (include/ringside/grpc_stats.h).
#include "ringside/grpc_stats.h"

#include <algorithm>
#include <cstring>
#include <map>

namespace ringside::grpc {

uint64_t MessageCounter::feed(std::string_view bytes) {
  uint64_t messages = 0;
  size_t at = 0;
  while (at < bytes.size()) {
    if (left_ > 0) {
      const size_t take = static_cast<size_t>(std::min<uint64_t>(left_, bytes.size() - at));
      left_ -= take;
      at += take;
      continue;
    }
    prefix_[prefix_got_++] = static_cast<uint8_t>(bytes[at++]);
    if (prefix_got_ < prefix_.size()) continue;
    prefix_got_ = 0;
    ++messages;
    left_ = (static_cast<uint64_t>(prefix_[1]) << 24) | (static_cast<uint64_t>(prefix_[2]) << 16) |
            (static_cast<uint64_t>(prefix_[3]) << 8) | prefix_[4];
  }
  return messages;
}

bool is_method_name(std::string_view path) {
  if (path.size() < 4 || path.size() > MethodTable::kMaxName || path.front() != '/') return false;
  int slashes = 0;
  for (size_t i = 1; i < path.size(); ++i) {
    const char ch = path[i];
    if (ch == '/') {
      if (++slashes > 1 || path[i - 1] == '/' || i + 1 == path.size()) return false;
      continue;
    }
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
    if (!ok) return false;
  }
  return slashes == 1;
}

MethodStats* MethodTable::find_or_add(std::string_view path) {
  if (!is_method_name(path)) {
    other_used_.store(true, std::memory_order_release);
    return &other_;
  }
  const size_t n = used_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < n; ++i) {
    Slot& slot = slots_[i];
    if (std::string_view(slot.name, slot.length) == path) return &slot.stats;
  }
  if (n == kMethods) {
    other_used_.store(true, std::memory_order_release);
    return &other_;
  }
  // Filled in, then published: a reader that sees used_ > n sees the name too.
  Slot& slot = slots_[n];
  std::memcpy(slot.name, path.data(), path.size());
  slot.length = static_cast<uint8_t>(path.size());
  used_.store(n + 1, std::memory_order_release);
  return &slot.stats;
}

GrpcStatsRegistry::GrpcStatsRegistry(unsigned workers, std::vector<std::string> service_names_in)
    : service_names(std::move(service_names_in)), tables(workers) {
  for (auto& per_worker : tables) {
    for (size_t s = 0; s < service_names.size(); ++s) {
      per_worker.push_back(std::make_unique<MethodTable>());
    }
  }
}

void render_grpc_stats(const GrpcStatsRegistry& stats, PrometheusWriter& writer) {
  // [service][method] -> the workers' stats of it.
  std::vector<std::map<std::string, std::vector<const MethodStats*>, std::less<>>> methods(
      stats.service_names.size());
  bool any = false;
  for (const auto& per_worker : stats.tables) {
    for (size_t s = 0; s < per_worker.size(); ++s) {
      per_worker[s]->for_each([&](std::string_view name, const MethodStats& m) {
        methods[s][std::string(name)].push_back(&m);
        any = true;
      });
    }
  }
  if (!any) return;  // no gRPC call yet: no families without samples
  auto each = [&](auto&& fn) {
    for (size_t s = 0; s < methods.size(); ++s) {
      for (const auto& [method, per_worker] : methods[s]) {
        fn(http::Labels{{"service", stats.service_names[s]}, {"method", method}}, per_worker);
      }
    }
  };
  auto counter = [&](std::string_view name, std::string_view help, Counter MethodStats::*field) {
    writer.family(name, "counter", help);
    each([&](const http::Labels& labels, const std::vector<const MethodStats*>& per_worker) {
      uint64_t total = 0;
      for (const MethodStats* m : per_worker) total += (m->*field).get();
      writer.sample(name, labels, total);
    });
  };
  counter("ringside_grpc_calls_total", "gRPC calls, per upstream service and method",
          &MethodStats::calls);
  writer.family("ringside_grpc_answers_total", "counter",
                "gRPC calls ended, by the grpc-status the client got (NONE: reset or cut "
                "without a status)");
  each([&](const http::Labels& labels, const std::vector<const MethodStats*>& per_worker) {
    for (size_t code = 0; code <= static_cast<size_t>(kStatusCount); ++code) {
      uint64_t total = 0;
      for (const MethodStats* m : per_worker) total += m->answers[code].get();
      if (total == 0) continue;
      http::Labels with_code = labels;
      with_code.emplace_back("grpc_code", code == MethodStats::kNoStatus
                                              ? std::string_view("NONE")
                                              : status_name(static_cast<Status>(code)));
      writer.sample("ringside_grpc_answers_total", with_code, total);
    }
  });
  writer.family("ringside_grpc_call_duration_seconds", "histogram",
                "gRPC call duration in seconds, first request byte to the end of the call");
  std::vector<const http::ResponseTimeHistogram*> histograms;
  each([&](const http::Labels& labels, const std::vector<const MethodStats*>& per_worker) {
    histograms.clear();
    for (const MethodStats* m : per_worker) histograms.push_back(&m->duration);
    http::render_histogram_seconds("ringside_grpc_call_duration_seconds", labels, histograms,
                                   writer);
  });
  counter("ringside_grpc_request_messages_total", "gRPC messages from the clients",
          &MethodStats::request_messages);
  counter("ringside_grpc_response_messages_total", "gRPC messages to the clients",
          &MethodStats::response_messages);
}

}  // namespace ringside::grpc
