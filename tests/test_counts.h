// The closing line of every C++ test program of the suite (tests/gtest_main.cc,
// bench/micro/benchmark_main.cc) and the exit status that goes with it; the integration
// tests' harness.main() prints the same line. tools/test.sh adds the lines up
// (docs/testing.md).
#pragma once

#include <cstdio>

namespace ringside::test_counts {

// meson's exit status for "this test did not run here".
inline constexpr int kExitSkip = 77;

// Prints "ringside-test-counts: P passed, F failed, S skipped" on stdout and returns the
// exit status for meson: 1 when anything failed or nothing ran at all (counted as one
// failure), 77 when everything skipped, else 0.
inline int report(const char* program, int passed, int failed, int skipped) {
  if (passed + failed + skipped == 0) {
    std::fprintf(stderr, "%s: FAIL: nothing ran\n", program);
    failed = 1;
  }
  std::fflush(stderr);
  std::printf("ringside-test-counts: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
  std::fflush(stdout);
  if (failed != 0) return 1;
  return passed == 0 ? kExitSkip : 0;
}

}  // namespace ringside::test_counts
