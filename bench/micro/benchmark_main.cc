// The main of every micro-benchmark (bench/micro/meson.build). Google Benchmark 1.7.1's
// BENCHMARK_MAIN() exits 0 even when runs reported errors, so a smoke test of it only
// proves the binary did not crash. This one counts each run's outcome through a
// reporter stacked on the default display reporter (so --benchmark_format still works)
// and exits 1 when a run reported a wrong result, 77 when every run was unavailable here
// (benchmark_main.h), closing with the counts tools/test.sh adds up (test_counts.h).
#include "benchmark_main.h"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <memory>
#include <string_view>
#include <vector>

#include "test_counts.h"

namespace ringside::bench {
namespace {

class CountingReporter final : public benchmark::BenchmarkReporter {
 public:
  explicit CountingReporter(benchmark::BenchmarkReporter* display) : display_(display) {}

  bool ReportContext(const Context& context) override { return display_->ReportContext(context); }

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration) continue;  // aggregates repeat the runs
      if (!run.error_occurred) {
        ++passed;
      } else if (std::string_view(run.error_message).starts_with(kUnavailable)) {
        ++skipped;
      } else {
        ++failed;
        std::fprintf(stderr, "benchmark_main: FAIL: %s: %s\n", run.benchmark_name().c_str(),
                     run.error_message.c_str());
      }
    }
    display_->ReportRuns(runs);
  }

  void Finalize() override { display_->Finalize(); }

  int passed = 0;
  int failed = 0;
  int skipped = 0;

 private:
  benchmark::BenchmarkReporter* display_;
};

}  // namespace
}  // namespace ringside::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::unique_ptr<benchmark::BenchmarkReporter> display(benchmark::CreateDefaultDisplayReporter());
  ringside::bench::CountingReporter counting(display.get());
  const size_t matched = benchmark::RunSpecifiedBenchmarks(&counting);
  benchmark::Shutdown();
  const bool listed_only = matched > 0 && counting.passed + counting.failed + counting.skipped == 0;
  if (listed_only) return 0;  // --benchmark_list_tests
  return ringside::test_counts::report("benchmark_main", counting.passed, counting.failed,
                                       counting.skipped);
}
