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

void GenerationReclaimer::retire(std::vector<std::unique_ptr<TlsGeneration>> replaced) {
  // The publish stores that unpublished these generations must be visible to every
  // worker before the epochs below are read: otherwise (store buffering) a worker could
  // pass its quiescent point and still load an old pointer afterwards. Together with
  // waiting for two quiescent points (the first may have been in flight when we looked),
  // a worker past them has only ever seen the new pointers.
#if defined(__SANITIZE_THREAD__)
  // GCC's ThreadSanitizer rejects fences; a seq_cst read-modify-write is the same full
  // barrier on x86 (a locked instruction).
  static std::atomic<uint64_t> barrier{0};
  barrier.fetch_add(1, std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
  Retired retired;
  retired.generations = std::move(replaced);
  retired.epochs.resize(workers_.workers);
  for (unsigned i = 0; i < workers_.workers; ++i) retired.epochs[i] = workers_.epoch(i);
  retired_.push_back(std::move(retired));
}

bool GenerationReclaimer::grace_passed(const Retired& retired) const {
  for (unsigned i = 0; i < workers_.workers; ++i) {
    if (workers_.epoch(i) >= retired.epochs[i] + 2) continue;
    if (workers_.stopped && workers_.stopped(i)) continue;
    return false;
  }
  return true;
}

size_t GenerationReclaimer::collect() {
  size_t freed = 0;
  for (size_t i = 0; i < retired_.size();) {
    Retired& retired = retired_[i];
    if (!retired.grace_passed) retired.grace_passed = grace_passed(retired);
    bool idle = retired.grace_passed;
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
