#include "ringside/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace ringside::log {
namespace {

// Captures what the logger writes through a pipe.
class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(pipe2(fds_, O_CLOEXEC | O_NONBLOCK), 0);
    set_output_fd(fds_[1]);
    set_level(Level::kInfo);
    set_thread_name("test");
  }
  void TearDown() override {
    set_output_fd(2);
    set_level(Level::kInfo);
    close(fds_[0]);
    close(fds_[1]);
  }
  // Everything written so far.
  std::string drain() {
    std::string out;
    char buffer[4096];
    while (true) {
      const ssize_t n = read(fds_[0], buffer, sizeof(buffer));
      if (n <= 0) break;
      out.append(buffer, static_cast<size_t>(n));
    }
    return out;
  }
  static std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
      out.push_back(text.substr(start, nl - start));
    }
    EXPECT_EQ(start, text.size()) << "output does not end in a newline";
    return out;
  }

  int fds_[2] = {-1, -1};
};

TEST(LogLevelTest, ParseAndPrint) {
  for (Level level : {Level::kError, Level::kWarn, Level::kInfo, Level::kDebug}) {
    EXPECT_EQ(parse_level(to_string(level)), level);
  }
  EXPECT_FALSE(parse_level("verbose").has_value());
  EXPECT_FALSE(parse_level("INFO").has_value());
  EXPECT_FALSE(parse_level("").has_value());
}

TEST_F(LogTest, LineFormat) {
  set_thread_name("w0");
  RS_WARN("upstream %s refused after %d tries", "10.0.0.7:15443", 3);
  const std::string out = drain();
  const std::regex format(
      R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z warn  w0 upstream 10\.0\.0\.7:15443 refused after 3 tries\n)");
  EXPECT_TRUE(std::regex_match(out, format)) << out;
  EXPECT_EQ(thread_name(), "w0");
}

TEST_F(LogTest, LevelFilters) {
  set_level(Level::kWarn);
  EXPECT_TRUE(enabled(Level::kError));
  EXPECT_TRUE(enabled(Level::kWarn));
  EXPECT_FALSE(enabled(Level::kInfo));
  int evaluated = 0;
  RS_INFO("dropped %d", ++evaluated);
  RS_DEBUG("dropped %d", ++evaluated);
  RS_ERROR("kept %d", 1);
  RS_WARN("kept %d", 2);
  EXPECT_EQ(evaluated, 0) << "arguments of a dropped message must not be evaluated";
  const std::vector<std::string> got = lines(drain());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NE(got[0].find(" error test kept 1"), std::string::npos) << got[0];
  EXPECT_NE(got[1].find(" warn  test kept 2"), std::string::npos) << got[1];

  set_level(Level::kDebug);
  RS_DEBUG("now shown");
  EXPECT_NE(drain().find(" debug test now shown"), std::string::npos);
  EXPECT_EQ(level(), Level::kDebug);
}

TEST_F(LogTest, OneLineWhateverTheMessage) {
  RS_INFO("peer sent \"%s\"", "GET /\r\nHost: x\x1b[31m\tend");
  RS_INFO("habit\n");
  const std::vector<std::string> got = lines(drain());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NE(got[0].find("peer sent \"GET /??Host: x?[31m end\""), std::string::npos) << got[0];
  EXPECT_NE(got[1].find("test habit"), std::string::npos) << got[1];
  EXPECT_EQ(got[1].back(), 't');
}

TEST_F(LogTest, LongMessagesAreCut) {
  const std::string long_text(10000, 'x');
  RS_ERROR("%s", long_text.c_str());
  const std::string out = drain();
  EXPECT_LE(out.size(), kMaxLineBytes);
  EXPECT_GE(out.size(), kMaxLineBytes - 1);
  EXPECT_EQ(out.substr(out.size() - 4), "...\n");
  EXPECT_EQ(lines(out).size(), 1u);
}

TEST_F(LogTest, KeepsErrno) {
  errno = ECONNRESET;
  RS_INFO("closing");
  EXPECT_EQ(errno, ECONNRESET);
  drain();
}

TEST_F(LogTest, ThreadNamesAreCappedAtFifteen) {
  set_thread_name("a-very-long-thread-name");
  EXPECT_EQ(thread_name(), "a-very-long-thr");
}

TEST_F(LogTest, ThreadsNeverInterleave) {
  // Writers block when the pipe is full; a reader drains it until they are done.
  ASSERT_EQ(fcntl(fds_[1], F_SETFL, 0), 0);
  constexpr int kThreads = 4;
  constexpr int kLinesPerThread = 300;
  std::atomic<bool> writers_done{false};
  std::string collected;
  std::thread reader([&] {
    char buffer[4096];
    while (true) {
      const ssize_t n = read(fds_[0], buffer, sizeof(buffer));
      if (n > 0) {
        collected.append(buffer, static_cast<size_t>(n));
      } else if (writers_done.load()) {
        break;  // done, and the pipe is empty
      } else {
        pollfd pfd{fds_[0], POLLIN, 0};
        poll(&pfd, 1, 50);
      }
    }
  });
  std::vector<std::thread> writers;
  const std::string filler(200, '=');
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([t, &filler] {
      set_thread_name("w" + std::to_string(t));
      for (int i = 0; i < kLinesPerThread; ++i) RS_INFO("line %d %s end", i, filler.c_str());
    });
  }
  for (std::thread& w : writers) w.join();
  writers_done.store(true);
  reader.join();
  const std::regex line_format(R"(\S+Z info  w[0-3] line \d+ =+ end)");
  const std::vector<std::string> got = lines(collected);
  ASSERT_EQ(got.size(), static_cast<size_t>(kThreads * kLinesPerThread));
  for (const std::string& line : got) {
    ASSERT_TRUE(std::regex_match(line, line_format)) << line;
  }
}

TEST(RateLimiterTest, AllowsBudgetPerSecondThenReportsSuppressed) {
  RateLimiter limiter;
  uint64_t suppressed = 99;
  EXPECT_TRUE(limiter.allow(3, 100, &suppressed));
  EXPECT_EQ(suppressed, 0u);
  EXPECT_TRUE(limiter.allow(3, 100, &suppressed));
  EXPECT_TRUE(limiter.allow(3, 100, &suppressed));
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(limiter.allow(3, 100, &suppressed));
  EXPECT_FALSE(limiter.allow(3, 100, &suppressed));
  // The next second: allowed again, and told how many were dropped.
  EXPECT_TRUE(limiter.allow(3, 101, &suppressed));
  EXPECT_EQ(suppressed, 6u);
  EXPECT_TRUE(limiter.allow(3, 101, &suppressed));
  EXPECT_EQ(suppressed, 0u) << "a suppressed count is reported once";
  // Quiet seconds in between change nothing.
  EXPECT_TRUE(limiter.allow(3, 500, &suppressed));
  EXPECT_EQ(suppressed, 0u);
}

TEST_F(LogTest, RateLimitedMacro) {
  for (int i = 0; i < 1000; ++i) RS_LOG_RATE_LIMITED(Level::kWarn, 5, "bad peer %d", i);
  const std::vector<std::string> got = lines(drain());
  size_t messages = 0, reports = 0;
  for (const std::string& line : got) {
    messages += line.find("bad peer") != std::string::npos;
    reports += line.find("suppressed ") != std::string::npos;
  }
  // Five per second; the loop may straddle one second boundary (then a report too).
  EXPECT_GE(messages, 5u);
  EXPECT_LE(messages, 10u);
  EXPECT_LE(reports, 1u);
  EXPECT_NE(got[0].find("bad peer 0"), std::string::npos);
}

}  // namespace
}  // namespace ringside::log
