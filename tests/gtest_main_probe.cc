// A gtest binary for tests/test_gtest_main.py only: one test that passes, one that skips
// (as a test does where io_uring or a wolfSSL feature is missing) and one that fails.
// The filter chosen by the test decides which run; nothing here runs in the suite itself.
#include <gtest/gtest.h>

TEST(Probe, Passes) { EXPECT_EQ(1 + 1, 2); }

TEST(Probe, SkipsHere) { GTEST_SKIP() << "the feature this probe stands for is missing"; }

TEST(Probe, Fails) { EXPECT_EQ(1 + 1, 3) << "a deliberately wrong result"; }
