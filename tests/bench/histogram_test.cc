#include "histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace ringside::bench {
namespace {

// The exact percentile of sorted data with the same rank rule as the histogram.
uint64_t exact_percentile(const std::vector<uint64_t>& sorted, double p) {
  auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void expect_within_one_percent(uint64_t reported, uint64_t exact) {
  double error = std::abs(static_cast<double>(reported) - static_cast<double>(exact)) /
                 static_cast<double>(exact);
  EXPECT_LE(error, 0.01) << "reported " << reported << " exact " << exact;
}

TEST(LatencyHistogram, BucketBoundsContainTheirValues) {
  std::mt19937_64 random(7);
  for (int i = 0; i < 100000; ++i) {
    uint64_t value = random() >> (random() % 64);
    size_t index = LatencyHistogram::bucket_index(value);
    ASSERT_LT(index, LatencyHistogram::kBucketCount);
    uint64_t lower = LatencyHistogram::bucket_lower(index);
    uint64_t width = LatencyHistogram::bucket_width(index);
    ASSERT_LE(lower, value);
    ASSERT_LE(value - lower, width - 1);
    // Relative width bounds the error: under 1% everywhere (width-1 buckets are exact).
    if (width > 1) {
      ASSERT_LE(static_cast<double>(width) / static_cast<double>(lower), 1.0 / 128);
    }
  }
  EXPECT_EQ(LatencyHistogram::bucket_index(UINT64_MAX), LatencyHistogram::kBucketCount - 1);
}

TEST(LatencyHistogram, PercentilesMatchSortedDataWithinOnePercent) {
  // Log-uniform from 1 us to 10 min, the range a latency report must cover.
  std::mt19937_64 random(42);
  std::uniform_real_distribution<double> exponent(3.0, std::log10(600e9));
  std::vector<uint64_t> values;
  LatencyHistogram histogram;
  for (int i = 0; i < 200000; ++i) {
    auto value = static_cast<uint64_t>(std::pow(10.0, exponent(random)));
    values.push_back(value);
    histogram.record(value);
  }
  std::sort(values.begin(), values.end());
  for (double p : {1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    expect_within_one_percent(histogram.percentile(p), exact_percentile(values, p));
  }
  EXPECT_EQ(histogram.count(), values.size());
  EXPECT_EQ(histogram.max(), values.back());
  EXPECT_EQ(histogram.min(), values.front());
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram histogram;
  for (uint64_t v = 1; v <= 100; ++v) histogram.record(v);
  EXPECT_EQ(histogram.percentile(50), 50u);
  EXPECT_EQ(histogram.percentile(99), 99u);
  EXPECT_EQ(histogram.percentile(100), 100u);
  EXPECT_DOUBLE_EQ(histogram.mean(), 50.5);
}

TEST(LatencyHistogram, MergeEqualsRecordingEverythingInOne) {
  std::mt19937_64 random(3);
  LatencyHistogram a, b, all;
  for (int i = 0; i < 50000; ++i) {
    uint64_t value = 1000 + random() % 50'000'000;
    (i % 3 == 0 ? a : b).record(value);
    all.record(value);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_EQ(a.min(), all.min());
  for (double p : {50.0, 90.0, 99.0, 99.9}) EXPECT_EQ(a.percentile(p), all.percentile(p));
}

TEST(LatencyHistogram, SpectrumIsCumulativeAndEndsAtOneHundred) {
  LatencyHistogram histogram;
  EXPECT_TRUE(histogram.spectrum().empty());
  EXPECT_EQ(histogram.percentile(99), 0u);
  for (uint64_t v : {1'000'000u, 2'000'000u, 2'000'000u, 900'000'000u}) histogram.record(v);
  auto points = histogram.spectrum();
  ASSERT_EQ(points.size(), 3u);
  EXPECT_DOUBLE_EQ(points[0].percentile, 25.0);
  EXPECT_DOUBLE_EQ(points[1].percentile, 75.0);
  EXPECT_DOUBLE_EQ(points[2].percentile, 100.0);
  EXPECT_EQ(points[2].value_ns, 900'000'000u);  // clamped to the exact max
}

TEST(LatencyHistogram, ResetEmptiesIt) {
  LatencyHistogram histogram;
  histogram.record(5000);
  histogram.reset();
  EXPECT_EQ(histogram.count(), 0u);
  EXPECT_EQ(histogram.max(), 0u);
  EXPECT_EQ(histogram.percentile(50), 0u);
}

}  // namespace
}  // namespace ringside::bench
