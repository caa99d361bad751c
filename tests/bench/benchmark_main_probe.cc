// A micro-benchmark program built only for tests/bench/test_benchmark_main.py: one
// benchmark with the right result, one that reports a deliberately wrong one and one
// whose feature is unavailable, run through bench/micro/benchmark_main.cc, to prove a
// smoke run fails on a wrong result and skips where nothing could run.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "benchmark_main.h"

namespace {

uint64_t sum_to(uint64_t n) {
  uint64_t total = 0;
  for (uint64_t i = 1; i <= n; ++i) total += i;
  return total;
}

void BM_RightResult(benchmark::State& state) {
  uint64_t total = 0;
  for (auto _ : state) {
    // The const overload: Google Benchmark 1.7.1's non-const DoNotOptimize ("+m,r") is
    // miscompiled by GCC 12 at -O2 with sanitizers (the result read back as 0).
    const uint64_t result = sum_to(100);
    benchmark::DoNotOptimize(result);
    total = result;
  }
  if (total != 5050) state.SkipWithError(("sum_to(100) is " + std::to_string(total)).c_str());
}
BENCHMARK(BM_RightResult);

void BM_WrongResult(benchmark::State& state) {
  uint64_t total = 0;
  for (auto _ : state) {
    // The const overload: Google Benchmark 1.7.1's non-const DoNotOptimize ("+m,r") is
    // miscompiled by GCC 12 at -O2 with sanitizers (the result read back as 0).
    const uint64_t result = sum_to(100);
    benchmark::DoNotOptimize(result);
    total = result;
  }
  if (total != 5051) state.SkipWithError("sum_to(100) is not 5051");  // deliberately wrong
}
BENCHMARK(BM_WrongResult);

void BM_Unavailable(benchmark::State& state) {
  ringside::bench::skip_unavailable(state, "the probe's imaginary feature");
  for (auto _ : state) {
  }
}
BENCHMARK(BM_Unavailable);

}  // namespace
