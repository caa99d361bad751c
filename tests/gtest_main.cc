// The main of every gtest binary of the suite (tests/meson.build: gtest_dep). Unlike
// gtest's own, it tells meson when nothing ran: exit 77 (meson's SKIP) when every test
// skipped, as where io_uring or a wolfSSL feature is missing, and it closes with the
// counts of tests passed, failed and skipped that tools/test.sh adds up (test_counts.h).
#include <gtest/gtest.h>

#include "test_counts.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  const int status = RUN_ALL_TESTS();
  if (GTEST_FLAG_GET(list_tests)) return status;

  const testing::UnitTest& unit = *testing::UnitTest::GetInstance();
  int failed = unit.failed_test_count();
  // A failure outside any test (a global environment, a test suite's set-up or
  // tear-down) leaves the per-test counts clean: it counts once.
  if ((status != 0 || unit.Failed()) && failed == 0) failed = 1;
  return ringside::test_counts::report("gtest_main", unit.successful_test_count(), failed,
                                       unit.skipped_test_count());
}
