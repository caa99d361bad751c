// The RCU part of certificate rotation: what a worker pays per connection to pick up
// the current TLS generation (one acquire load plus a plain per-worker count up and
// down), with and without a control thread publishing new generations concurrently,
// and what a publication plus reclamation costs the control thread.
#include <benchmark/benchmark.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "ringside/tls_generation.h"

namespace ringside {
namespace {

// A generation without TLS material: the scheme does not look inside the context.
std::unique_ptr<TlsGeneration> make_generation(uint64_t id, unsigned workers) {
  return std::make_unique<TlsGeneration>(nullptr, id, workers);
}

// One connection's view: load the slot at handshake start, hold, release at close.
void BM_LoadHoldRelease(benchmark::State& state) {
  auto generation = make_generation(1, 1);
  ContextSlot slot;
  slot.publish(generation.get());
  for (auto _ : state) {
    const TlsGeneration* current = slot.load();
    current->hold(0);
    benchmark::DoNotOptimize(current);
    current->release(0);
  }
}
BENCHMARK(BM_LoadHoldRelease);

// The same while another thread publishes a new generation as fast as it can (far more
// often than any real rotation): the load's cache line keeps moving between cores.
void BM_LoadHoldReleaseUnderPublication(benchmark::State& state) {
  constexpr int kGenerations = 64;
  std::vector<std::unique_ptr<TlsGeneration>> generations;
  for (int i = 0; i < kGenerations; ++i) generations.push_back(make_generation(i, 1));
  ContextSlot slot;
  slot.publish(generations[0].get());
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    for (int i = 0; !stop.load(std::memory_order_relaxed); i = (i + 1) % kGenerations) {
      slot.publish(generations[i].get());
    }
  });
  for (auto _ : state) {
    const TlsGeneration* current = slot.load();
    current->hold(0);
    benchmark::DoNotOptimize(current);
    current->release(0);
  }
  stop.store(true);
  publisher.join();
}
BENCHMARK(BM_LoadHoldReleaseUnderPublication);

// The control thread's side of one rotation: publish, retire the old generation, and
// collect it once two quiescent points have passed on every (simulated) worker.
void BM_PublishRetireCollect(benchmark::State& state) {
  unsigned workers = static_cast<unsigned>(state.range(0));
  std::vector<uint64_t> epochs(workers, 0);
  WorkerQuiescence quiescence;
  quiescence.workers = workers;
  quiescence.epoch = [&](unsigned w) { return epochs[w]; };
  quiescence.stopped = [](unsigned) { return false; };
  GenerationReclaimer reclaimer(quiescence);
  ContextSlot slot;
  auto current = make_generation(0, workers);
  slot.publish(current.get());
  uint64_t id = 1;
  for (auto _ : state) {
    auto next = make_generation(id++, workers);
    slot.publish(next.get());
    std::vector<std::unique_ptr<TlsGeneration>> replaced;
    replaced.push_back(std::move(current));
    current = std::move(next);
    reclaimer.retire(std::move(replaced));
    for (int turn = 0; turn < 3; ++turn) {
      for (auto& epoch : epochs) ++epoch;
      reclaimer.collect();
    }
  }
  if (reclaimer.pending() != 0) state.SkipWithError("a generation was not reclaimed");
}
BENCHMARK(BM_PublishRetireCollect)->Arg(1)->Arg(2)->Arg(8);

}  // namespace
}  // namespace ringside
