// Publication and reclamation of TLS material (the RCU part of DESIGN.md).
//
// A TlsGeneration is one immutable TlsContext for one listener plus a live-connection
// count per worker. The control side publishes it into a ContextSlot with one release
// store; a worker loads the slot (acquire) when it starts a handshake, calls hold() and
// keeps the raw pointer for the life of the connection, then calls release() once the
// connection's TLS session is gone. Neither call is an atomic read-modify-write: each
// worker's count sits on its own cache line and only that worker writes it.
//
// A generation that has been replaced is handed to a GenerationReclaimer, which frees it
// once (1) every running worker has passed two quiescent points since the replacement,
// so no worker can still be between loading the old pointer and counting its hold, and
// (2) every worker's count for it is zero. Workers report quiescent points through a
// counter they bump once per event-loop turn (Worker::quiescent_epoch()).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "ringside/quiescence.h"
#include "ringside/tls.h"

namespace ringside {

// One listener's TLS material of one rotation. Immutable once published, except the
// per-worker live counts.
class TlsGeneration {
 public:
  // id: the rotation number (the same for every listener's generation of one rotation).
  // workers: how many workers may hold it (the size of the count array).
  TlsGeneration(std::shared_ptr<const tls::TlsContext> context, uint64_t id, unsigned workers);
  ~TlsGeneration();
  TlsGeneration(const TlsGeneration&) = delete;
  TlsGeneration& operator=(const TlsGeneration&) = delete;

  const std::shared_ptr<const tls::TlsContext> context;
  const uint64_t id;

  // Worker `worker` only: a connection starts using this generation. Plain load+store
  // of the worker's own counter (relaxed): no lock, no read-modify-write.
  void hold(unsigned worker) const {
    auto& count = live_[worker].count;
    count.store(count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  // Worker `worker` only: a connection that held this generation is gone (its TLS
  // session freed). The store is a release so that the reclaimer, reading zero with
  // acquire, sees everything the connection did with the context before it ended (on
  // x86 and arm64 a release store is an ordinary store).
  void release(unsigned worker) const {
    auto& count = live_[worker].count;
    count.store(count.load(std::memory_order_relaxed) - 1, std::memory_order_release);
  }
  // Any thread: the connections worker `worker` has open on this generation.
  int64_t live_connections(unsigned worker) const {
    return live_[worker].count.load(std::memory_order_acquire);
  }
  // Any thread: the sum over all workers.
  int64_t live_connections() const;
  unsigned workers() const { return workers_; }

 private:
  // One cache line per worker so that workers never write the same line.
  struct alignas(64) WorkerCount {
    std::atomic<int64_t> count{0};
  };
  std::unique_ptr<WorkerCount[]> live_;
  unsigned workers_;
};

// The RCU cell a worker reads at handshake start.
class ContextSlot {
 public:
  const TlsGeneration* load() const { return current_.load(std::memory_order_acquire); }
  // Makes generation current. Control thread only; the previous generation must go to a
  // GenerationReclaimer (never be freed directly).
  void publish(const TlsGeneration* generation) {
    current_.store(generation, std::memory_order_release);
  }

 private:
  std::atomic<const TlsGeneration*> current_{nullptr};
};

// Frees replaced generations once no worker can reach them. Used by one thread (the
// rotation agent's); retire() and collect() are not thread-safe against each other.
class GenerationReclaimer {
 public:
  explicit GenerationReclaimer(WorkerQuiescence workers);
  // Frees whatever is still retired. Only call once every worker has stopped and its
  // connections are gone (or at process exit).
  ~GenerationReclaimer();
  GenerationReclaimer(const GenerationReclaimer&) = delete;
  GenerationReclaimer& operator=(const GenerationReclaimer&) = delete;

  // Takes the generations that one rotation replaced (already unpublished: every slot
  // that pointed at them points elsewhere). They are freed together, later.
  void retire(std::vector<std::unique_ptr<TlsGeneration>> replaced);
  // Frees every retired batch that is safe to free; returns how many batches were freed.
  size_t collect();
  // Retired batches not freed yet.
  size_t pending() const { return retired_.size(); }
  // Connections still open on retired generations (sum over batches and workers).
  int64_t pending_connections() const;

 private:
  struct Retired {
    std::vector<std::unique_ptr<TlsGeneration>> generations;
    GracePeriod grace;  // started when they were retired
  };

  WorkerQuiescence workers_;
  std::vector<Retired> retired_;
};

}  // namespace ringside
