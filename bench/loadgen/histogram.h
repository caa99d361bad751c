// LatencyHistogram: a log-bucketed histogram in the manner of HdrHistogram. Values are
// nanoseconds. Below 256 ns every value has its own bucket; above, each power of two is
// split into 128 linear sub-buckets, so a bucket is at most 1/128 of its lower bound
// wide and a reported value (the bucket midpoint) is within 0.4% of any value recorded in
// it, from 1 ns to the full uint64 range (584 years). Recording is one index computation
// and one increment; histograms of different threads merge by adding counts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ringside::bench {

class LatencyHistogram {
 public:
  static constexpr unsigned kSubBucketBits = 7;  // 128 sub-buckets per power of two
  static constexpr unsigned kLinearLimitBits = kSubBucketBits + 1;  // 256 exact values
  static constexpr size_t kBucketCount =
      (size_t{1} << kLinearLimitBits) + (64 - kLinearLimitBits) * (size_t{1} << kSubBucketBits);

  LatencyHistogram() : counts_(kBucketCount, 0) {}

  void record(uint64_t value_ns) { record(value_ns, 1); }
  void record(uint64_t value_ns, uint64_t count) {
    counts_[bucket_index(value_ns)] += count;
    total_ += count;
    sum_ += static_cast<double>(value_ns) * static_cast<double>(count);
    if (value_ns > max_) max_ = value_ns;
    if (value_ns < min_) min_ = value_ns;
  }

  // Adds every count of other into this one.
  void merge(const LatencyHistogram& other);
  void reset();

  uint64_t count() const { return total_; }
  // Exact extremes (0 when empty).
  uint64_t max() const { return max_; }
  uint64_t min() const { return total_ == 0 ? 0 : min_; }
  double mean() const { return total_ == 0 ? 0 : sum_ / static_cast<double>(total_); }
  double stddev() const;

  // The value at percentile p (0..100]: the smallest recorded value v such that at least
  // p% of the values are <= v, reported as its bucket's midpoint (clamped to max()).
  // 0 when empty.
  uint64_t percentile(double p) const;

  // One point of the percentile spectrum: the value below which `percentile` % fall.
  struct SpectrumPoint {
    double percentile;
    uint64_t value_ns;
  };
  // The cumulative distribution, one point per non-empty bucket (for plots).
  std::vector<SpectrumPoint> spectrum() const;

  static size_t bucket_index(uint64_t value);
  static uint64_t bucket_lower(size_t index);
  static uint64_t bucket_width(size_t index);

 private:
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  double sum_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = UINT64_MAX;
};

inline size_t LatencyHistogram::bucket_index(uint64_t value) {
  if (value < (uint64_t{1} << kLinearLimitBits)) return static_cast<size_t>(value);
  unsigned exponent = 63u - static_cast<unsigned>(__builtin_clzll(value));  // >= 8
  unsigned shift = exponent - kSubBucketBits;
  size_t sub = static_cast<size_t>(value >> shift) - (size_t{1} << kSubBucketBits);
  return (size_t{1} << kLinearLimitBits) +
         static_cast<size_t>(exponent - kLinearLimitBits) * (size_t{1} << kSubBucketBits) + sub;
}

}  // namespace ringside::bench
