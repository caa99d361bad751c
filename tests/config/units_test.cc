#include <gtest/gtest.h>

#include "ringside/config.h"

namespace ringside {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(ParseDurationTest, Units) {
  struct Case {
    const char* text;
    Duration expected;
  };
  const Case cases[] = {
      {"250ms", milliseconds(250)},
      {"5s", seconds(5)},
      {"2m", minutes(2)},
      {"1h", hours(1)},
      {"7d", hours(24 * 7)},
      {"30", seconds(30)},
      {"0", Duration(0)},
      {"0ms", Duration(0)},
      {"36500d", hours(24 * 36500)},
      {"1000ms", seconds(1)},
      {"007s", seconds(7)},
  };
  for (const Case& c : cases) {
    std::string detail;
    auto d = parse_duration(c.text, &detail);
    ASSERT_TRUE(d.ok()) << c.text << ": " << detail;
    EXPECT_EQ(d.value(), c.expected) << c.text;
  }
}

TEST(ParseDurationTest, RejectsWithReason) {
  struct Case {
    const char* text;
    const char* reason;
  };
  const Case cases[] = {
      {"-5s", "negative"},
      {"", "not a duration"},
      {"s", "not a duration"},
      {"five", "not a duration"},
      {"5x", "unknown unit 'x'"},
      {"5 s", "unknown unit ' s'"},
      {"1.5s", "unknown unit '.5s'"},
      {"5S", "unknown unit 'S'"},
      {"36501d", "too long"},
      {"99999999999999999999999s", "too long"},
      {"9223372036854775807ms", "too long"},
  };
  for (const Case& c : cases) {
    std::string detail;
    auto d = parse_duration(c.text, &detail);
    EXPECT_FALSE(d.ok()) << c.text;
    EXPECT_NE(detail.find(c.reason), std::string::npos) << c.text << " -> " << detail;
    if (!d.ok()) {
      EXPECT_EQ(d.error().kind, ErrorKind::kConfig);
    }
  }
}

TEST(FormatDurationTest, LargestExactUnit) {
  EXPECT_EQ(format_duration(Duration(0)), "0s");
  EXPECT_EQ(format_duration(milliseconds(250)), "250ms");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_duration(seconds(5)), "5s");
  EXPECT_EQ(format_duration(seconds(90)), "90s");
  EXPECT_EQ(format_duration(minutes(2)), "2m");
  EXPECT_EQ(format_duration(hours(1)), "1h");
  EXPECT_EQ(format_duration(hours(36)), "36h");
  EXPECT_EQ(format_duration(hours(24 * 7)), "7d");
}

TEST(FormatDurationTest, RoundTrips) {
  for (const char* text : {"250ms", "5s", "2m", "1h", "7d", "1500ms", "0s"}) {
    auto d = parse_duration(text, nullptr);
    ASSERT_TRUE(d.ok()) << text;
    EXPECT_EQ(format_duration(d.value()), text);
  }
}

TEST(ParseSizeTest, Units) {
  struct Case {
    const char* text;
    uint64_t expected;
  };
  const Case cases[] = {
      {"4096", 4096},     {"0", 0},         {"16k", 16384},   {"16K", 16384},
      {"16kb", 16384},    {"16KiB", 16384}, {"1m", 1 << 20},  {"1M", 1 << 20},
      {"2g", 2ull << 30}, {"100b", 100},    {"16896", 16896},
  };
  for (const Case& c : cases) {
    std::string detail;
    auto size = parse_size(c.text, &detail);
    ASSERT_TRUE(size.ok()) << c.text << ": " << detail;
    EXPECT_EQ(size.value(), c.expected) << c.text;
  }
}

TEST(ParseSizeTest, RejectsWithReason) {
  struct Case {
    const char* text;
    const char* reason;
  };
  const Case cases[] = {
      {"-1", "negative"},
      {"", "not a size"},
      {"k", "not a size"},
      {"16t", "unknown unit 't'"},
      {"1.5k", "unknown unit '.5k'"},
      {"18446744073709551616", "too large"},
      {"17179869184g", "too large"},
  };
  for (const Case& c : cases) {
    std::string detail;
    auto size = parse_size(c.text, &detail);
    EXPECT_FALSE(size.ok()) << c.text;
    EXPECT_NE(detail.find(c.reason), std::string::npos) << c.text << " -> " << detail;
  }
}

}  // namespace
}  // namespace ringside
