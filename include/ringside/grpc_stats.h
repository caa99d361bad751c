// gRPC statistics per upstream service and method (/package.Service/Method): calls,
// answers by grpc-status, call duration, messages each way (what Envoy's grpc_stats
// filter keeps). Per worker, written by that worker only (relaxed load + store, as
// stats.h); /stats sums the workers' tables by method name.
//
// Method names come from clients, so the set is bounded: each worker's table of a
// service holds at most kMethods methods, first come; calls to further methods, and paths
// that are not a gRPC method name, count under the method "other".
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ringside/admin.h"
#include "ringside/grpc.h"
#include "ringside/http_stats.h"
#include "ringside/stats.h"

namespace ringside::grpc {

// Counts the messages of one direction of a call from its DATA bytes: each message is a
// 5-byte prefix (compressed flag, 4-byte big-endian length) and that many bytes.
class MessageCounter {
 public:
  // The messages whose prefix completed within bytes.
  uint64_t feed(std::string_view bytes);

 private:
  uint64_t left_ = 0;       // bytes of the current message's payload still to come
  uint8_t prefix_got_ = 0;  // bytes of the next prefix seen so far
  std::array<uint8_t, 5> prefix_{};
};

struct MethodStats {
  static constexpr size_t kNoStatus = kStatusCount;  // the call ended without a grpc-status
  Counter calls;
  std::array<Counter, kStatusCount + 1> answers;  // by grpc-status; the last: none
  http::ResponseTimeHistogram duration;           // first request byte to the call's end, ms
  Counter request_messages, response_messages;
};

class MethodTable {
 public:
  static constexpr size_t kMethods = 64;
  static constexpr size_t kMaxName = 128;

  // Worker only. The stats of method (a request path); never null, stable for the
  // table's life.
  MethodStats* find_or_add(std::string_view path);

  // Any thread: calls fn(name, stats) for every method in use.
  template <typename Fn>
  void for_each(Fn&& fn) const {
    const size_t n = used_.load(std::memory_order_acquire);
    for (size_t i = 0; i < n; ++i)
      fn(std::string_view(slots_[i].name, slots_[i].length), slots_[i].stats);
    if (other_used_.load(std::memory_order_acquire)) fn(std::string_view("other"), other_);
  }

 private:
  struct Slot {
    char name[kMaxName];
    uint8_t length = 0;
    MethodStats stats;
  };
  std::array<Slot, kMethods> slots_;
  std::atomic<size_t> used_{0};  // slots [0, used_) are published
  MethodStats other_;
  std::atomic<bool> other_used_{false};
};

// True for "/pkg.Service/Method": a leading '/', then letters, digits, '_', '.', '-' and
// one more '/', at most MethodTable::kMaxName bytes.
bool is_method_name(std::string_view path);

// tables[w][s]: worker w, HTTP service s (HttpStatsRegistry::service_names). Sized once.
struct GrpcStatsRegistry {
  std::vector<std::string> service_names;
  std::vector<std::vector<std::unique_ptr<MethodTable>>> tables;

  GrpcStatsRegistry(unsigned workers, std::vector<std::string> service_names_in);
};

// ringside_grpc_calls_total, _answers_total{grpc_code}, _call_duration_seconds (histogram),
// _request_messages_total, _response_messages_total, each {service, method}, summed over
// workers. Usable as a PrometheusAppender.
void render_grpc_stats(const GrpcStatsRegistry& stats, PrometheusWriter& writer);

}  // namespace ringside::grpc
