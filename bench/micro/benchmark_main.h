// What a micro-benchmark tells bench/micro/benchmark_main.cc, the main every benchmark
// of bench/micro links instead of BENCHMARK_MAIN(): a run that calls
// state.SkipWithError(message) reported a wrong result, and the program exits 1; a run
// that calls skip_unavailable(state, why) could not run on this machine (no io_uring, a
// wolfSSL feature not built) and counts as skipped; when every run skipped the program
// exits 77, meson's SKIP.
#pragma once

#include <benchmark/benchmark.h>

#include <string>

namespace ringside::bench {

// The prefix of a SkipWithError message that means "unavailable here", not "wrong".
inline constexpr char kUnavailable[] = "unavailable: ";

// Ends the run as skipped: the machine lacks what it measures (why says what).
inline void skip_unavailable(benchmark::State& state, const std::string& why) {
  state.SkipWithError((kUnavailable + why).c_str());  // Google Benchmark copies the message
}

}  // namespace ringside::bench
