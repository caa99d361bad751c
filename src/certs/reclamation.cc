#include <atomic>
#include <utility>

#include "ringside/tls_generation.h"

namespace ringside {

TlsGeneration::TlsGeneration(std::shared_ptr<const tls::TlsContext> context_in, uint64_t id_in,
                             unsigned workers)
    : context(std::move(context_in)),
      id(id_in),
      live_(std::make_unique<WorkerCount[]>(workers == 0 ? 1 : workers)),
      workers_(workers == 0 ? 1 : workers) {}

TlsGeneration::~TlsGeneration() = default;

int64_t TlsGeneration::live_connections() const {
  int64_t total = 0;
  for (unsigned i = 0; i < workers_; ++i) total += live_connections(i);
  return total;
}

GenerationReclaimer::GenerationReclaimer(WorkerQuiescence workers) : workers_(std::move(workers)) {}

GenerationReclaimer::~GenerationReclaimer() = default;

GracePeriod::GracePeriod(const WorkerQuiescence& workers) {
  // The publish stores that unpublished the objects must be visible to every worker
  // before the epochs below are read: otherwise (store buffering) a worker could pass its
  // quiescent point and still load an old pointer afterwards. Together with waiting for
  // two quiescent points (the first may have been in flight when we looked), a worker
  // past them has only ever seen the new pointers.
#if defined(__SANITIZE_THREAD__)
  // GCC's ThreadSanitizer rejects fences; a seq_cst read-modify-write is the same full
  // barrier on x86 (a locked instruction).
  static std::atomic<uint64_t> barrier{0};
  barrier.fetch_add(1, std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
  epochs_.resize(workers.workers);
  for (unsigned i = 0; i < workers.workers; ++i) epochs_[i] = workers.epoch(i);
}

bool GracePeriod::passed(const WorkerQuiescence& workers) {
  if (passed_) return true;
  for (unsigned i = 0; i < workers.workers; ++i) {
    if (workers.epoch(i) >= epochs_[i] + 2) continue;
    if (workers.stopped && workers.stopped(i)) continue;
    return false;
  }
  passed_ = true;
  return true;
}

void GenerationReclaimer::retire(std::vector<std::unique_ptr<TlsGeneration>> replaced) {
  retired_.push_back(Retired{std::move(replaced), GracePeriod(workers_)});
}

size_t GenerationReclaimer::collect() {
  size_t freed = 0;
  for (size_t i = 0; i < retired_.size();) {
    Retired& retired = retired_[i];
    bool idle = retired.grace.passed(workers_);
    // After the grace period no worker can take a new hold, so a count that reads zero
    // stays zero; the acquire loads pair with release() and order the free after every
    // use of the context.
    for (size_t g = 0; idle && g < retired.generations.size(); ++g) {
      idle = retired.generations[g]->live_connections() == 0;
    }
    if (!idle) {
      ++i;
      continue;
    }
    retired_.erase(retired_.begin() + static_cast<std::ptrdiff_t>(i));
    ++freed;
  }
  return freed;
}

int64_t GenerationReclaimer::pending_connections() const {
  int64_t total = 0;
  for (const Retired& retired : retired_) {
    for (const auto& generation : retired.generations) total += generation->live_connections();
  }
  return total;
}

}  // namespace ringside
