#include "histogram.h"

#include <algorithm>
#include <cmath>

namespace ringside::bench {

uint64_t LatencyHistogram::bucket_lower(size_t index) {
  constexpr size_t kLinear = size_t{1} << kLinearLimitBits;
  if (index < kLinear) return index;
  size_t group = (index - kLinear) >> kSubBucketBits;
  size_t sub = (index - kLinear) & ((size_t{1} << kSubBucketBits) - 1);
  unsigned exponent = static_cast<unsigned>(group) + kLinearLimitBits;
  unsigned shift = exponent - kSubBucketBits;
  return (uint64_t{(size_t{1} << kSubBucketBits) + sub}) << shift;
}

uint64_t LatencyHistogram::bucket_width(size_t index) {
  constexpr size_t kLinear = size_t{1} << kLinearLimitBits;
  if (index < kLinear) return 1;
  size_t group = (index - kLinear) >> kSubBucketBits;
  return uint64_t{1} << (group + kLinearLimitBits - kSubBucketBits);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < kBucketCount; ++i) counts_[i] += other.counts_[i];
  total_ += other.total_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
  min_ = std::min(min_, other.min_);
}

void LatencyHistogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = 0;
  sum_ = 0;
  max_ = 0;
  min_ = UINT64_MAX;
}

double LatencyHistogram::stddev() const {
  if (total_ == 0) return 0;
  double m = mean();
  double squares = 0;
  for (size_t i = 0; i < kBucketCount; ++i) {
    if (counts_[i] == 0) continue;
    double mid =
        static_cast<double>(bucket_lower(i)) + static_cast<double>(bucket_width(i) - 1) / 2.0;
    squares += static_cast<double>(counts_[i]) * (mid - m) * (mid - m);
  }
  return std::sqrt(squares / static_cast<double>(total_));
}

namespace {

uint64_t midpoint(size_t index) {
  return LatencyHistogram::bucket_lower(index) + (LatencyHistogram::bucket_width(index) - 1) / 2;
}

}  // namespace

uint64_t LatencyHistogram::percentile(double p) const {
  if (total_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  auto rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(total_)));
  rank = std::clamp<uint64_t>(rank, 1, total_);
  uint64_t seen = 0;
  for (size_t i = 0; i < kBucketCount; ++i) {
    seen += counts_[i];
    // The bucket holding the largest value reports it exactly.
    if (seen == total_) return max_;
    if (seen >= rank) return std::clamp(midpoint(i), min(), max_);
  }
  return max_;
}

std::vector<LatencyHistogram::SpectrumPoint> LatencyHistogram::spectrum() const {
  std::vector<SpectrumPoint> points;
  if (total_ == 0) return points;
  uint64_t seen = 0;
  for (size_t i = 0; i < kBucketCount; ++i) {
    if (counts_[i] == 0) continue;
    seen += counts_[i];
    uint64_t value = seen == total_ ? max_ : std::clamp(midpoint(i), min(), max_);
    points.push_back(
        SpectrumPoint{100.0 * static_cast<double>(seen) / static_cast<double>(total_), value});
  }
  return points;
}

}  // namespace ringside::bench
