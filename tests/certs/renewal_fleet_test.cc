// The renewal schedule's randomness: renewal jitter, full-jitter retry backoff and the
// CA's Retry-After, each on its own, then the agent's scheduling functions run for a
// simulated fleet of 10,000 sidecars started in the same minute, which prints the CA's
// peak requests per second with and without jitter (docs/rotation.md quotes it).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <queue>
#include <random>
#include <vector>

#include "certs/sources.h"

namespace ringside::certs {
namespace {

constexpr auto kWeek = std::chrono::hours(168);
constexpr auto kFiveDays = std::chrono::hours(120);

tls::CertInfo issued_at(int64_t t, std::chrono::seconds lifetime = kWeek) {
  tls::CertInfo cert;
  cert.not_before = t - 300;
  cert.not_after = t + lifetime.count();
  return cert;
}

TEST(RenewalJitter, MovesRenewalIntoTheLastPartOfTheInterval) {
  const auto cert = issued_at(1000);
  const int64_t due = 1000 + 5 * 86400;
  EXPECT_EQ(renewal_time(cert, 1000, kWeek, kFiveDays, 20, 0.0), due);
  EXPECT_EQ(renewal_time(cert, 1000, kWeek, kFiveDays, 0, 0.99), due) << "0 %: no jitter";
  // u near 1: 20 % of five days earlier, i.e. after four days.
  EXPECT_NEAR(renewal_time(cert, 1000, kWeek, kFiveDays, 20, 0.999999), 1000 + 4 * 86400, 1);
  EXPECT_NEAR(renewal_time(cert, 1000, kWeek, kFiveDays, 20, 0.5), 1000 + 4.5 * 86400, 1);
  // Every draw lands inside [4 days, 5 days].
  std::mt19937_64 random(7);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  for (int i = 0; i < 1000; ++i) {
    int64_t at = renewal_time(cert, 1000, kWeek, kFiveDays, 20, uniform(random));
    ASSERT_GE(at, 1000 + 4 * 86400);
    ASSERT_LE(at, due);
  }
  // A short-lived certificate from a remote CA's profile: the same fraction of its own
  // interval.
  const auto hour = issued_at(1000, std::chrono::seconds(3600));
  EXPECT_NEAR(renewal_time(hour, 1000, kWeek, kFiveDays, 20, 0.999999), 1000 + 0.8 * 3600 * 5 / 7,
              1);
}

TEST(RetryBackoff, FullJitterUnderADoublingCeilingAndTheCasRetryAfter) {
  // The ceiling: 1 s, 2 s, 4 s ... capped; u = 1 gives the ceiling itself.
  EXPECT_EQ(retry_delay_ms(1, 1000, 300000, 1.0, 0), 1000);
  EXPECT_EQ(retry_delay_ms(2, 1000, 300000, 1.0, 0), 2000);
  EXPECT_EQ(retry_delay_ms(4, 1000, 300000, 1.0, 0), 8000);
  EXPECT_EQ(retry_delay_ms(20, 1000, 300000, 1.0, 0), 300000);
  EXPECT_EQ(retry_delay_ms(1000, 1000, 300000, 1.0, 0), 300000) << "no overflow";
  // u = 0: the floor, never a busy loop.
  EXPECT_EQ(retry_delay_ms(9, 1000, 300000, 0.0, 0), kMinRetryMs);
  EXPECT_EQ(retry_delay_ms(9, 1000, 300000, 0.5, 0), kMinRetryMs + (256000 - kMinRetryMs) / 2);
  // The CA's Retry-After wins over a shorter draw, not over a longer one.
  EXPECT_EQ(retry_delay_ms(1, 1000, 300000, 0.5, 120000), 120000);
  EXPECT_EQ(retry_delay_ms(12, 1000, 300000, 1.0, 5000), 300000);
}

TEST(RetryAfter, DeltaSecondsAndHttpDates) {
  EXPECT_EQ(parse_retry_after("120", 0), 120);
  EXPECT_EQ(parse_retry_after("  7 ", 0), 7);
  EXPECT_EQ(parse_retry_after("0", 0), 0);
  // 1994-11-06T08:49:37Z is 784111777.
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 - 30), 30);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 30), 0) << "past";
  EXPECT_EQ(parse_retry_after("", 0), -1);
  EXPECT_EQ(parse_retry_after("soon", 0), -1);
  EXPECT_EQ(parse_retry_after("-5", 0), -1);
  EXPECT_EQ(parse_retry_after("1.5", 0), -1);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT trailing", 0), -1);
  EXPECT_EQ(parse_retry_after("99999999999999999999", 0), 999'999'999) << "capped, not UB";
}

// ---- the fleet ------------------------------------------------------------------------

constexpr int kFleet = 10'000;

// Requests per whole second -> the busiest second.
size_t peak_per_second(const std::vector<int64_t>& request_ms) {
  std::map<int64_t, size_t> per_second;
  size_t peak = 0;
  for (int64_t ms : request_ms) peak = std::max(peak, ++per_second[ms / 1000]);
  return peak;
}

// Every sidecar starts at a random second of the same minute and gets its first
// certificate then; the CA's requests for the first renewal of the whole fleet.
size_t renewal_peak(unsigned jitter_percent) {
  std::mt19937_64 random(42);
  std::uniform_int_distribution<int64_t> start(0, 59);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<int64_t> requests;
  for (int i = 0; i < kFleet; ++i) {
    int64_t t = start(random);
    requests.push_back(
        renewal_time(issued_at(t), t, kWeek, kFiveDays, jitter_percent, uniform(random)) * 1000);
  }
  return peak_per_second(requests);
}

// The CA is down for an hour while the whole fleet starts (or restarts) in one minute:
// every sidecar retries by the agent's backoff until the CA is back. The CA's busiest
// second in the ten minutes after it is back, and in the outage's last 50 minutes (the
// first ten are the ramp of short first retries, where full jitter's shorter waits make
// it busier, not quieter).
struct OutagePeaks {
  size_t during = 0, after = 0;
};
OutagePeaks outage_peaks(bool jitter) {
  constexpr int64_t kBackMs = 3'600'000, kCapMs = 300'000;
  std::mt19937_64 random(43);
  std::uniform_int_distribution<int64_t> start(0, 59'999);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  using Attempt = std::pair<int64_t, int>;  // (time, sidecar)
  std::priority_queue<Attempt, std::vector<Attempt>, std::greater<>> queue;
  std::vector<unsigned> failures(kFleet, 0);
  for (int i = 0; i < kFleet; ++i) queue.emplace(start(random), i);
  std::vector<int64_t> during, after;
  while (!queue.empty()) {
    auto [t, i] = queue.top();
    queue.pop();
    if (t >= kBackMs) {  // the CA answers: this sidecar is served and quiet for days
      if (t < kBackMs + 600'000) after.push_back(t);
      continue;
    }
    if (t >= 600'000) during.push_back(t);  // past the first ten minutes' ramp
    // Without jitter: the former fixed doubling (the ceiling itself, u = 1).
    queue.emplace(
        t + retry_delay_ms(++failures[i], 1000, kCapMs, jitter ? uniform(random) : 1.0, 0), i);
  }
  return {peak_per_second(during), peak_per_second(after)};
}

TEST(RenewalFleet, TenThousandSidecarsStartedInOneMinute) {
  const size_t steady_plain = renewal_peak(0), steady_jitter = renewal_peak(20);
  const OutagePeaks outage_plain = outage_peaks(false), outage_jitter = outage_peaks(true);
  std::printf(
      "10,000 sidecars started in one minute, --cert-renew-after 5d; the CA's busiest second:\n"
      "  first renewal of the fleet:            %5zu req/s without jitter, %5zu with 20 %%\n"
      "  CA down 1 h at start, minutes 10-60:    %5zu req/s without jitter, %5zu with\n"
      "  first 10 min after the CA is back:     %5zu req/s without jitter, %5zu with\n",
      steady_plain, steady_jitter, outage_plain.during, outage_jitter.during, outage_plain.after,
      outage_jitter.after);
  ::testing::Test::RecordProperty("renewal_peak_without_jitter", static_cast<int>(steady_plain));
  ::testing::Test::RecordProperty("renewal_peak_with_jitter", static_cast<int>(steady_jitter));
  ::testing::Test::RecordProperty("recovery_peak_without_jitter",
                                  static_cast<int>(outage_plain.after));
  ::testing::Test::RecordProperty("recovery_peak_with_jitter",
                                  static_cast<int>(outage_jitter.after));
  // Without jitter the renewals replay the start-up minute; spread over the last day of
  // the five they are a trickle.
  EXPECT_GE(steady_plain, static_cast<size_t>(kFleet / 60));
  EXPECT_LE(steady_jitter * 20, steady_plain);
  // Fixed doubling keeps a second's starters in lockstep through the whole outage;
  // full jitter spreads them.
  EXPECT_LT(outage_jitter.during * 2, outage_plain.during);
  EXPECT_LT(outage_jitter.after * 2, outage_plain.after);
}

}  // namespace
}  // namespace ringside::certs
