// What memory a thread touches costs right after it slept, against the same touches
// warm. At the fixed rates where sidecars live a worker sleeps in io_uring_enter between
// events and wakes about twice per request; if the sleep left its caches and TLB cold,
// the pages a request touches (code and data) would cost far more than their instructions.
// This measures that cost on the machine at hand:
//
//   BM_TouchPagesAfterSleep/N  a thread blocks in read() on a pipe that another thread,
//                              on another CPU, writes every 200 us; once woken, it reads
//                              one byte from each of N distinct, already mapped 4 KiB
//                              pages. Only the touches are timed, not the wake-up.
//   BM_TouchPagesWarm/N        the same N touches repeated at once, without a sleep.
//
// Read "per page" (a counter) of the two side by side; docs/benchmarks/compare.md ("Is
// memory cold after a sleep?") has this machine's figures and the command.
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "benchmark_main.h"

namespace ringside {
namespace {

// A page and a cache line apart, so that each touch is a new page and the touched lines
// do not all map to one cache set.
constexpr size_t kStride = 4096 + 64;

class Pages {
 public:
  explicit Pages(size_t count) : size_(count * kStride + 4096) {
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    base_ = static_cast<char*>(p);
    std::memset(base_, 1, size_);  // map every page before timing anything
  }
  ~Pages() {
    if (base_ != nullptr) ::munmap(base_, size_);
  }
  Pages(const Pages&) = delete;
  Pages& operator=(const Pages&) = delete;

  bool ok() const { return base_ != nullptr; }

  // One byte from each page; the sum keeps the loads.
  unsigned touch(size_t count) const {
    unsigned sum = 0;
    for (size_t i = 0; i < count; ++i) {
      sum += static_cast<unsigned char>(*static_cast<volatile char*>(base_ + i * kStride));
    }
    return sum;
  }

 private:
  size_t size_;
  char* base_ = nullptr;
};

// Time per touched page: pages per second over the timed part, inverted.
benchmark::Counter per_page(size_t count) {
  return benchmark::Counter(
      static_cast<double>(count),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

bool pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return ::pthread_setaffinity_np(::pthread_self(), sizeof(set), &set) == 0;
}

void BM_TouchPagesAfterSleep(benchmark::State& state) {
  const auto count = static_cast<size_t>(state.range(0));
  Pages pages(count);
  int fds[2];
  if (!pages.ok() || ::pipe(fds) != 0) {
    state.SkipWithError("mmap or pipe failed");
    return;
  }
  // The reader stays on the CPU it runs on; the writer goes to another one when there is
  // one, as the load and the app do in the fixed-rate runs.
  const int cpu = ::sched_getcpu();
  const unsigned cpus = std::thread::hardware_concurrency();
  const bool pinned = cpu >= 0 && pin_to(cpu);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    if (pinned && cpus > 1) pin_to((cpu + 1) % static_cast<int>(cpus));
    const char byte = 0;
    const timespec interval{0, 200'000};
    while (!stop.load(std::memory_order_relaxed)) {
      ::nanosleep(&interval, nullptr);
      if (::write(fds[1], &byte, 1) != 1) break;
    }
  });
  unsigned sum = 0;
  bool failed = false;
  for (auto _ : state) {
    char byte;
    if (::read(fds[0], &byte, 1) != 1) {
      failed = true;
      break;
    }
    const auto start = std::chrono::steady_clock::now();
    sum += pages.touch(count);
    const auto end = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(end - start).count());
  }
  stop.store(true);
  writer.join();
  ::close(fds[0]);
  ::close(fds[1]);
  if (failed) {
    state.SkipWithError("read from the pipe failed");
    return;
  }
  benchmark::DoNotOptimize(sum);
  state.counters["per page"] = per_page(count);
}

void BM_TouchPagesWarm(benchmark::State& state) {
  const auto count = static_cast<size_t>(state.range(0));
  Pages pages(count);
  if (!pages.ok()) {
    state.SkipWithError("mmap failed");
    return;
  }
  unsigned sum = pages.touch(count);
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    sum += pages.touch(count);
    const auto end = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(end - start).count());
  }
  benchmark::DoNotOptimize(sum);
  state.counters["per page"] = per_page(count);
}

// Fixed counts: with manual time, a minimum time would count only the timed touches and
// take minutes of 200 us sleeps to fill. 2,000 wake-ups take 0.4 s.
BENCHMARK(BM_TouchPagesAfterSleep)->Arg(16)->Arg(64)->Arg(256)->UseManualTime()->Iterations(2000);
BENCHMARK(BM_TouchPagesWarm)->Arg(16)->Arg(64)->Arg(256)->UseManualTime()->Iterations(20000);

}  // namespace
}  // namespace ringside
