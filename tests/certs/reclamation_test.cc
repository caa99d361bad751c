// Publication and reclamation of TLS generations: the single-threaded rules, then
// simulated workers (threads that load the slot, hold generations across turns and bump
// their quiescent epochs) against a control thread that rotates as fast as it can. A
// generation freed while a worker could still reach it is detected by a flag set from
// its context's deleter (and by ASan/TSan in the sanitizer builds).
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <deque>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "ringside/tls_generation.h"

namespace ringside {
namespace {

constexpr size_t kMaxGenerations = 1 << 14;

struct Tracker {
  std::array<std::atomic<bool>, kMaxGenerations> freed{};
  std::atomic<uint64_t> freed_count{0};
};

// A generation whose (absent) context records when the generation is destroyed.
std::unique_ptr<TlsGeneration> make_generation(Tracker* tracker, uint64_t id, unsigned workers) {
  std::shared_ptr<const tls::TlsContext> context(
      static_cast<const tls::TlsContext*>(nullptr), [tracker, id](const tls::TlsContext*) {
        tracker->freed[id].store(true, std::memory_order_release);
        tracker->freed_count.fetch_add(1, std::memory_order_relaxed);
      });
  return std::make_unique<TlsGeneration>(std::move(context), id, workers);
}

struct FakeWorkers {
  explicit FakeWorkers(unsigned n) : epochs(n), stopped(n) {}
  WorkerQuiescence quiescence() {
    WorkerQuiescence q;
    q.workers = static_cast<unsigned>(epochs.size());
    q.epoch = [this](unsigned i) { return epochs[i].load(std::memory_order_acquire); };
    q.stopped = [this](unsigned i) { return stopped[i].load(std::memory_order_acquire); };
    return q;
  }
  void turn(unsigned i) {
    epochs[i].store(epochs[i].load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  std::vector<std::atomic<uint64_t>> epochs;
  std::vector<std::atomic<bool>> stopped;
};

std::vector<std::unique_ptr<TlsGeneration>> batch(std::unique_ptr<TlsGeneration> g) {
  std::vector<std::unique_ptr<TlsGeneration>> v;
  v.push_back(std::move(g));
  return v;
}

TEST(TlsGeneration, CountsPerWorker) {
  Tracker tracker;
  auto g = make_generation(&tracker, 1, 3);
  g->hold(0);
  g->hold(2);
  g->hold(2);
  EXPECT_EQ(g->live_connections(0), 1);
  EXPECT_EQ(g->live_connections(1), 0);
  EXPECT_EQ(g->live_connections(2), 2);
  EXPECT_EQ(g->live_connections(), 3);
  g->release(2);
  EXPECT_EQ(g->live_connections(), 2);
}

TEST(GenerationReclaimer, WaitsForTwoQuiescentPointsOfEveryWorker) {
  Tracker tracker;
  FakeWorkers workers(2);
  GenerationReclaimer reclaimer(workers.quiescence());
  reclaimer.retire(batch(make_generation(&tracker, 1, 2)));
  EXPECT_EQ(reclaimer.collect(), 0u);
  workers.turn(0);
  workers.turn(0);
  workers.turn(0);
  EXPECT_EQ(reclaimer.collect(), 0u) << "worker 1 has not passed a quiescent point";
  workers.turn(1);
  EXPECT_EQ(reclaimer.collect(), 0u) << "one point may have been in flight at retire time";
  EXPECT_FALSE(tracker.freed[1].load());
  workers.turn(1);
  EXPECT_EQ(reclaimer.collect(), 1u);
  EXPECT_TRUE(tracker.freed[1].load());
  EXPECT_EQ(reclaimer.pending(), 0u);
}

TEST(GenerationReclaimer, WaitsForOpenConnections) {
  Tracker tracker;
  FakeWorkers workers(2);
  GenerationReclaimer reclaimer(workers.quiescence());
  auto g = make_generation(&tracker, 1, 2);
  const TlsGeneration* held = g.get();
  held->hold(1);
  reclaimer.retire(batch(std::move(g)));
  for (int i = 0; i < 5; ++i) {
    workers.turn(0);
    workers.turn(1);
  }
  EXPECT_EQ(reclaimer.collect(), 0u);
  EXPECT_EQ(reclaimer.pending_connections(), 1);
  EXPECT_FALSE(tracker.freed[1].load());
  held->release(1);
  EXPECT_EQ(reclaimer.collect(), 1u);
  EXPECT_TRUE(tracker.freed[1].load());
}

TEST(GenerationReclaimer, StoppedWorkerNeedsNoQuiescentPointButItsCountsStillCount) {
  Tracker tracker;
  FakeWorkers workers(2);
  GenerationReclaimer reclaimer(workers.quiescence());
  auto g = make_generation(&tracker, 1, 2);
  const TlsGeneration* held = g.get();
  held->hold(1);
  reclaimer.retire(batch(std::move(g)));
  workers.turn(0);
  workers.turn(0);
  workers.stopped[1].store(true);
  EXPECT_EQ(reclaimer.collect(), 0u) << "worker 1 still has a connection on it";
  held->release(1);
  EXPECT_EQ(reclaimer.collect(), 1u);
}

TEST(GenerationReclaimer, BatchesAreFreedIndependentlyAndAllAtDestruction) {
  Tracker tracker;
  FakeWorkers workers(1);
  {
    GenerationReclaimer reclaimer(workers.quiescence());
    auto old = make_generation(&tracker, 1, 1);
    const TlsGeneration* pinned = old.get();
    pinned->hold(0);
    reclaimer.retire(batch(std::move(old)));
    reclaimer.retire(batch(make_generation(&tracker, 2, 1)));
    workers.turn(0);
    workers.turn(0);
    EXPECT_EQ(reclaimer.collect(), 1u);
    EXPECT_FALSE(tracker.freed[1].load());
    EXPECT_TRUE(tracker.freed[2].load());
    EXPECT_EQ(reclaimer.pending(), 1u);
  }
  EXPECT_TRUE(tracker.freed[1].load()) << "the destructor frees what is left";
}

// Simulated workers against a control thread rotating continuously.
TEST(GenerationReclaimer, ConcurrentWorkersNeverSeeAFreedGeneration) {
  constexpr unsigned kWorkers = 4;
  constexpr uint64_t kRotations = 3000;
  Tracker tracker;
  FakeWorkers workers(kWorkers);
  ContextSlot slot;
  GenerationReclaimer reclaimer(workers.quiescence());
  auto current = make_generation(&tracker, 1, kWorkers);
  slot.publish(current.get());

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> violations{0};
  std::atomic<uint64_t> connections{0};
  std::vector<std::thread> threads;
  for (unsigned w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937 rng(w + 1);
      std::deque<const TlsGeneration*> open;  // this worker's connections
      while (!stop.load(std::memory_order_acquire)) {
        // One loop turn: accept a few, use every open one, close a few.
        for (unsigned n = rng() % 4; n > 0; --n) {
          const TlsGeneration* g = slot.load();
          g->hold(w);
          open.push_back(g);
          connections.fetch_add(1, std::memory_order_relaxed);
        }
        for (const TlsGeneration* g : open) {
          if (tracker.freed[g->id].load(std::memory_order_acquire)) {
            violations.fetch_add(1, std::memory_order_relaxed);
          }
        }
        for (unsigned n = rng() % 4; n > 0 && !open.empty(); --n) {
          // Close an old one or a recent one: connections outlive several rotations.
          size_t at = rng() % 2 == 0 ? 0 : open.size() - 1;
          open[at]->release(w);
          open.erase(open.begin() + static_cast<std::ptrdiff_t>(at));
        }
        workers.turn(w);
      }
      for (const TlsGeneration* g : open) g->release(w);
      workers.turn(w);
    });
  }

  for (uint64_t id = 2; id <= kRotations; ++id) {
    auto next = make_generation(&tracker, id, kWorkers);
    slot.publish(next.get());
    reclaimer.retire(batch(std::move(current)));
    current = std::move(next);
    reclaimer.collect();
    if (id % 16 == 0) std::this_thread::yield();
  }
  stop.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  for (unsigned w = 0; w < kWorkers; ++w) workers.turn(w), workers.turn(w);
  reclaimer.collect();

  EXPECT_EQ(violations.load(), 0u);
  EXPECT_GT(connections.load(), 1000u);
  EXPECT_EQ(reclaimer.pending(), 0u) << "every replaced generation is freed once released";
  EXPECT_EQ(tracker.freed_count.load(), kRotations - 1);
  EXPECT_FALSE(tracker.freed[kRotations].load()) << "the current one stays";
}

}  // namespace
}  // namespace ringside
