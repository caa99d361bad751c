// Cluster: round robin, retries, passive outlier detection and the endpoint-set RCU,
// driven on the test thread with explicit worker indexes, clocks and quiescent epochs.
#include "ringside/cluster.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace ringside::cluster {
namespace {

class ClusterTest : public ::testing::Test {
 protected:
  void make(unsigned workers, OutlierPolicy policy = {}) {
    epochs_.assign(workers, 0);
    WorkerQuiescence quiescence;
    quiescence.workers = workers;
    quiescence.epoch = [this](unsigned w) { return epochs_[w]; };
    cluster_ = std::make_unique<Cluster>("svc", workers, policy, std::move(quiescence));
  }

  bool set(const std::vector<std::string>& addresses,
           EndpointSourceKind source = EndpointSourceKind::kStatic) {
    std::vector<DiscoveredEndpoint> found;
    for (const std::string& a : addresses)
      found.push_back({*SocketAddress::parse_numeric(a), source});
    return cluster_->update(found);
  }

  // Every worker passes `turns` quiescent points.
  void quiesce(unsigned turns = 2) {
    for (auto& epoch : epochs_) epoch += turns;
  }

  // Picks for a new connection on `worker`, releases at once, returns the port.
  uint16_t pick_port(unsigned worker, uint64_t now_ms = 1000) {
    Endpoint* e = cluster_->pick(worker, 0, nullptr, now_ms);
    EXPECT_NE(e, nullptr);
    if (e == nullptr) return 0;
    e->release(worker);
    return e->address.port();
  }

  // The endpoint of the current set with this port (walks the set through retries at a
  // time when no ejection is in force).
  Endpoint* endpoint(uint16_t port) {
    constexpr uint64_t kNoEjection = ~0ull;
    Endpoint* found = cluster_->pick(0, 0, nullptr, kNoEjection);
    for (unsigned attempt = 1; found != nullptr && found->address.port() != port; ++attempt) {
      Endpoint* next = cluster_->pick(0, attempt, found, kNoEjection);
      found->release(0);
      found = next;
    }
    if (found != nullptr) found->release(0);
    return found;
  }

  std::string json(uint64_t now_ms = 1000) { return cluster_->render_json(now_ms); }

  std::vector<uint64_t> epochs_;
  std::unique_ptr<Cluster> cluster_;
};

TEST_F(ClusterTest, RoundRobinPerWorkerStartingApart) {
  make(2);
  ASSERT_TRUE(set({"10.0.0.1:1", "10.0.0.2:2", "10.0.0.3:3"}));
  std::vector<uint16_t> w0, w1;
  for (int i = 0; i < 4; ++i) w0.push_back(pick_port(0));
  for (int i = 0; i < 4; ++i) w1.push_back(pick_port(1));
  EXPECT_EQ(w0, (std::vector<uint16_t>{1, 2, 3, 1}));
  EXPECT_EQ(w1, (std::vector<uint16_t>{2, 3, 1, 2}));
}

TEST_F(ClusterTest, RetryTakesTheNextEndpointAndAttemptsAreBounded) {
  make(1);
  ASSERT_TRUE(set({"10.0.0.1:1", "10.0.0.2:2", "10.0.0.3:3"}));
  Endpoint* first = cluster_->pick(0, 0, nullptr, 0);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->address.port(), 1);
  Endpoint* second = cluster_->pick(0, 1, first, 0);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->address.port(), 2);
  Endpoint* third = cluster_->pick(0, 2, second, 0);
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(third->address.port(), 3);
  EXPECT_EQ(cluster_->pick(0, 3, third, 0), nullptr);  // every endpoint tried once
  for (Endpoint* e : {first, second, third}) e->release(0);

  // A previous endpoint that left the set: the retry takes the round-robin turn.
  make(1);
  ASSERT_TRUE(set({"10.0.0.1:1"}));
  Endpoint* gone = cluster_->pick(0, 0, nullptr, 0);
  ASSERT_TRUE(set({"10.0.0.2:2", "10.0.0.3:3"}));
  Endpoint* next = cluster_->pick(0, 1, gone, 0);
  ASSERT_NE(next, nullptr);
  EXPECT_NE(next->address.port(), 1);
  gone->release(0);
  next->release(0);

  // Never more than kMaxAttempts, however large the cluster.
  make(1);
  std::vector<std::string> many;
  for (int i = 1; i <= 20; ++i) many.push_back("10.0.1." + std::to_string(i) + ":80");
  ASSERT_TRUE(set(many));
  EXPECT_EQ(cluster_->pick(0, Cluster::kMaxAttempts, nullptr, 0), nullptr);
  Endpoint* last = cluster_->pick(0, Cluster::kMaxAttempts - 1, nullptr, 0);
  ASSERT_NE(last, nullptr);
  last->release(0);
}

TEST_F(ClusterTest, EmptySetPicksNothingAndCountsIt) {
  make(1);
  EXPECT_EQ(cluster_->pick(0, 0, nullptr, 0), nullptr);
  EXPECT_EQ(cluster_->no_endpoint(0), 1u);
  EXPECT_NE(json().find("\"no_endpoint\":1"), std::string::npos) << json();
}

TEST_F(ClusterTest, ConsecutiveConnectFailuresEjectUntilTheTimeIsUp) {
  OutlierPolicy policy;
  policy.consecutive_connect_failures = 3;
  policy.ejection_ms = 30000;
  make(1, policy);
  ASSERT_TRUE(set({"10.0.0.1:1", "10.0.0.2:2"}));
  Endpoint* bad = endpoint(1);
  // A success in between resets the count.
  cluster_->report_connect(0, *bad, false, 1000);
  cluster_->report_connect(0, *bad, false, 1000);
  cluster_->report_connect(0, *bad, true, 1000);
  cluster_->report_connect(0, *bad, false, 1000);
  cluster_->report_connect(0, *bad, false, 1000);
  EXPECT_FALSE(bad->ejected(0, 1000));
  cluster_->report_connect(0, *bad, false, 1000);
  EXPECT_TRUE(bad->ejected(0, 1000));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(pick_port(0, 1000), 2);
  EXPECT_NE(
      json(1000).find("\"state\":\"ejected\",\"ejected_workers\":1,\"ejected_ms_left\":30000"),
      std::string::npos)
      << json(1000);
  EXPECT_NE(json(1000).find("\"connect_ok\":1,\"connect_failed\":5"), std::string::npos);
  // Back after the ejection time.
  EXPECT_FALSE(bad->ejected(0, 31000));
  std::vector<uint16_t> ports;
  for (int i = 0; i < 2; ++i) ports.push_back(pick_port(0, 31000));
  EXPECT_NE(std::find(ports.begin(), ports.end(), 1), ports.end());
  EXPECT_NE(json(31000).find("\"state\":\"active\""), std::string::npos);
}

TEST_F(ClusterTest, EjectionIsPerWorker) {
  OutlierPolicy policy;
  policy.consecutive_connect_failures = 1;
  make(2, policy);
  ASSERT_TRUE(set({"10.0.0.1:1", "10.0.0.2:2"}));
  Endpoint* bad = endpoint(1);
  cluster_->report_connect(0, *bad, false, 1000);
  EXPECT_TRUE(bad->ejected(0, 1000));
  EXPECT_FALSE(bad->ejected(1, 1000));
  std::vector<uint16_t> w1;
  for (int i = 0; i < 2; ++i) w1.push_back(pick_port(1));
  EXPECT_NE(std::find(w1.begin(), w1.end(), 1), w1.end());
}

TEST_F(ClusterTest, NeverEjectsMoreThanTheMaximumPercent) {
  OutlierPolicy policy;
  policy.consecutive_connect_failures = 1;
  make(1, policy);  // 50%
  ASSERT_TRUE(set({"10.0.0.1:1", "10.0.0.2:2"}));
  Endpoint* a = endpoint(1);
  Endpoint* b = endpoint(2);
  cluster_->report_connect(0, *a, false, 1000);
  cluster_->report_connect(0, *b, false, 1000);
  EXPECT_TRUE(a->ejected(0, 1000));
  EXPECT_FALSE(b->ejected(0, 1000));  // would be 2 of 2

  // Four endpoints: two may go, the third may not.
  make(1, policy);
  ASSERT_TRUE(set({"10.0.0.1:1", "10.0.0.2:2", "10.0.0.3:3", "10.0.0.4:4"}));
  for (uint16_t port : {1, 2, 3}) cluster_->report_connect(0, *endpoint(port), false, 1000);
  EXPECT_TRUE(endpoint(1)->ejected(0, 1000));
  EXPECT_TRUE(endpoint(2)->ejected(0, 1000));
  EXPECT_FALSE(endpoint(3)->ejected(0, 1000));

  // A single endpoint is never ejected at 50%; 0% turns ejection off.
  make(1, policy);
  ASSERT_TRUE(set({"10.0.0.1:1"}));
  cluster_->report_connect(0, *endpoint(1), false, 1000);
  EXPECT_FALSE(endpoint(1)->ejected(0, 1000));
  policy.max_ejection_percent = 0;
  make(1, policy);
  ASSERT_TRUE(set({"10.0.0.1:1", "10.0.0.2:2"}));
  cluster_->report_connect(0, *endpoint(1), false, 1000);
  EXPECT_FALSE(endpoint(1)->ejected(0, 1000));
}

TEST_F(ClusterTest, Consecutive5xxEject) {
  OutlierPolicy policy;
  policy.consecutive_5xx = 2;
  make(1, policy);
  ASSERT_TRUE(set({"10.0.0.1:1", "10.0.0.2:2"}));
  Endpoint* e = endpoint(1);
  cluster_->report_response(0, *e, 503, 1000);
  cluster_->report_response(0, *e, 200, 1000);  // resets
  cluster_->report_response(0, *e, 500, 1000);
  cluster_->report_response(0, *e, 404, 1000);  // not 5xx: resets too
  cluster_->report_response(0, *e, 502, 1000);
  EXPECT_FALSE(e->ejected(0, 1000));
  cluster_->report_response(0, *e, 504, 1000);
  EXPECT_TRUE(e->ejected(0, 1000));
  EXPECT_NE(json().find("\"responses\":6,\"responses_5xx\":4,\"ejections\":1"), std::string::npos)
      << json();

  // Off when the threshold is 0.
  policy.consecutive_5xx = 0;
  make(1, policy);
  ASSERT_TRUE(set({"10.0.0.1:1", "10.0.0.2:2"}));
  for (int i = 0; i < 10; ++i) cluster_->report_response(0, *endpoint(1), 503, 1000);
  EXPECT_FALSE(endpoint(1)->ejected(0, 1000));
}

TEST_F(ClusterTest, EveryEndpointEjectedStillPicksOne) {
  OutlierPolicy policy;
  policy.consecutive_connect_failures = 1;
  policy.max_ejection_percent = 100;
  make(1, policy);
  ASSERT_TRUE(set({"10.0.0.1:1", "10.0.0.2:2"}));
  cluster_->report_connect(0, *endpoint(1), false, 1000);
  cluster_->report_connect(0, *endpoint(2), false, 1000);
  EXPECT_NE(pick_port(0, 1000), 0);
}

TEST_F(ClusterTest, UpdateKeepsIdentityAndDrainsRemovedEndpoints) {
  make(2);
  ASSERT_TRUE(set({"10.0.0.1:1", "10.0.0.2:2"}));
  EXPECT_FALSE(set({"10.0.0.1:1", "10.0.0.2:2"}));  // nothing changed, nothing published
  Endpoint* kept = endpoint(1);
  Endpoint* leaving = endpoint(2);
  const uint32_t kept_id = kept->id;
  // Worker 1 holds a connection to the leaving endpoint.
  Endpoint* held = cluster_->pick(1, 0, nullptr, 0);
  ASSERT_EQ(held, leaving);

  ASSERT_TRUE(set({"10.0.0.1:1", "10.0.0.3:3"}, EndpointSourceKind::kDns));
  EXPECT_EQ(endpoint(1), kept);
  EXPECT_EQ(kept->id, kept_id);
  EXPECT_EQ(kept->source, EndpointSourceKind::kStatic);  // the first source that named it
  EXPECT_EQ(endpoint(3)->source, EndpointSourceKind::kDns);
  EXPECT_FALSE(leaving->in_set());
  for (int i = 0; i < 6; ++i) EXPECT_NE(pick_port(i % 2), 2);
  EXPECT_NE(json().find("\"address\":\"10.0.0.2:2\",\"source\":\"static\",\"state\":\"draining\""),
            std::string::npos)
      << json();
  EXPECT_EQ(cluster_->addresses(), (std::vector<std::string>{"10.0.0.1:1", "10.0.0.3:3"}));

  // Nothing is freed before every worker passed two quiescent points...
  EXPECT_EQ(cluster_->collect(), 0u);
  epochs_[0] += 2;
  EXPECT_EQ(cluster_->collect(), 0u);
  epochs_[1] += 1;
  EXPECT_EQ(cluster_->collect(), 0u);
  epochs_[1] += 1;
  // ...then the replaced sets go, but the held endpoint stays until it is released.
  EXPECT_EQ(cluster_->collect(), 2u);  // the empty start set and the first one
  EXPECT_EQ(cluster_->pending(), 1u);
  held->release(1);
  EXPECT_EQ(cluster_->collect(), 1u);
  EXPECT_EQ(cluster_->pending(), 0u);
  EXPECT_EQ(json().find("10.0.0.2:2"), std::string::npos) << json();
}

TEST_F(ClusterTest, EndpointBackBeforeItDrainedIsTheSameEndpoint) {
  make(1);
  ASSERT_TRUE(set({"10.0.0.1:1", "10.0.0.2:2"}));
  Endpoint* e = endpoint(2);
  Endpoint* held = cluster_->pick(0, 1, endpoint(1), 0);
  ASSERT_EQ(held, e);
  ASSERT_TRUE(set({"10.0.0.1:1"}));
  ASSERT_TRUE(set({"10.0.0.1:1", "10.0.0.2:2"}));
  EXPECT_EQ(endpoint(2), e);
  EXPECT_TRUE(e->in_set());
  held->release(0);
  quiesce();
  cluster_->collect();
  EXPECT_EQ(cluster_->pending(), 0u);
  EXPECT_EQ(endpoint(2), e);  // not freed: it is in the set
}

TEST_F(ClusterTest, JsonShowsSources) {
  make(1);
  SourceStatus status;
  status.text = "dns:replicas.ns:15443";
  status.kind = EndpointSourceKind::kDns;
  status.endpoints = 2;
  status.refreshes = 7;
  status.failures = 1;
  status.last_error = "cannot resolve \"x\"";
  cluster_->set_sources({status});
  EXPECT_NE(json().find("\"sources\":[{\"source\":\"dns:replicas.ns:15443\",\"kind\":\"dns\","
                        "\"endpoints\":2,\"refreshes\":7,\"failures\":1,\"last_error\":"
                        "\"cannot resolve \\\"x\\\"\"}]"),
            std::string::npos)
      << json();
}

// ---- balancing ------------------------------------------------------------------------

class BalancingTest : public ClusterTest {
 protected:
  // Endpoints 10.0.0.1:1 .. :n; a, b, c are the first three (found while the cluster is
  // still round robin), then the policy is set.
  void make_balanced(LbPolicy policy, unsigned n = 2) {
    make(1);
    std::vector<std::string> addresses;
    for (unsigned i = 1; i <= n; ++i)
      addresses.push_back("10.0.0." + std::to_string(i) + ":" + std::to_string(i));
    ASSERT_TRUE(set(addresses));
    a = endpoint(1);
    b = endpoint(2);
    c = n >= 3 ? endpoint(3) : nullptr;
    cluster_->set_balancing(policy, LbLoad::kRequests);
  }
  // Counts of picks by port over `picks` picks at now_ms (each released at once).
  std::vector<int> spread(int picks, uint64_t now_ms = 1000) {
    std::vector<int> counts(8, 0);
    for (int i = 0; i < picks; ++i) ++counts[pick_port(0, now_ms)];
    return counts;
  }
  void outstanding(Endpoint* e, int n) {
    for (int i = 0; i < n; ++i) cluster_->begin_request(0, *e);
  }
  void sample(Endpoint* e, int64_t latency_us, uint64_t now_us) {
    cluster_->begin_request(0, *e);
    cluster_->end_request(0, *e, latency_us, now_us);
  }
  Endpoint* a = nullptr;
  Endpoint* b = nullptr;
  Endpoint* c = nullptr;
};

TEST_F(BalancingTest, LeastRequestTakesTheEndpointWithFewerOutstanding) {
  make_balanced(LbPolicy::kLeastRequest);
  outstanding(a, 3);
  EXPECT_EQ(a->outstanding(0), 3);
  // Two endpoints: both are drawn every time, so the choice is deterministic.
  EXPECT_EQ(spread(50)[2], 50);
  outstanding(b, 5);
  EXPECT_EQ(spread(50)[1], 50);
}

TEST_F(BalancingTest, P2cEwmaWeighsLatencyByOutstandingRequests) {
  make_balanced(LbPolicy::kP2cEwma);
  sample(a, 1'000, 1'000'000);
  sample(b, 10'000, 1'000'000);
  EXPECT_EQ(a->latency_ewma_us(0), 1'000u);
  EXPECT_EQ(a->outstanding(0), 0);
  EXPECT_EQ(spread(50, 1000)[1], 50);  // the faster one
  // Ten requests waiting on the fast one make it cost more than the idle slow one:
  // 1,001 x 11 > 10,001 x 1.
  outstanding(a, 10);
  EXPECT_EQ(spread(50, 1000)[2], 50);
}

TEST_F(BalancingTest, PeakEwmaTakesASlowSampleAtOnceAndAFastOneGradually) {
  make_balanced(LbPolicy::kP2cEwma);
  sample(a, 1'000, 1'000'000);
  sample(a, 50'000, 1'000'100);  // a peak: taken as is
  EXPECT_EQ(a->latency_ewma_us(0), 50'000u);
  sample(a, 1'000, 1'000'200);  // 100 us later: one sample's least weight, 1/16
  EXPECT_GT(a->latency_ewma_us(0), 46'000u);
  EXPECT_LT(a->latency_ewma_us(0), 47'500u);
  sample(a, 1'000, 11'000'200);  // 10 s (one time constant) later: most of the way
  EXPECT_LT(a->latency_ewma_us(0), 20'000u);
  EXPECT_GT(a->latency_ewma_us(0), 1'000u);
}

// A busy endpoint's one slow answer must not outweigh the many fast ones after it for
// most of the time constant: then a replica ten times slower would look cheaper.
TEST_F(BalancingTest, APeakOfABusyEndpointIsWashedOutByItsNextAnswers) {
  make_balanced(LbPolicy::kP2cEwma);
  sample(b, 50'000, 1'000'000);  // the slow replica
  uint64_t now = 1'000'000;
  sample(a, 5'000, now);
  sample(a, 25'000, now += 1'000);                              // a hiccup of the fast one
  for (int i = 0; i < 60; ++i) sample(a, 5'000, now += 1'250);  // 800 answers a second
  EXPECT_LT(a->latency_ewma_us(0), 6'000u);                     // 75 ms after the peak
  // Even with four of its requests waiting, the fast one is still the cheaper choice.
  outstanding(a, 4);
  EXPECT_EQ(spread(20, now / 1000)[1], 20);
  // A replica that really slows down: every slower answer is believed at once.
  sample(a, 60'000, now += 1'000);
  EXPECT_EQ(a->latency_ewma_us(0), 60'000u);
}

// A gRPC server answers its streams at once: its latency samples, taken with several
// requests in flight, already hold its queueing. Measured at 8 in flight, 7 requests
// waiting on a 9 ms replica do not make it cost more than an idle 50 ms one (Finagle's
// latency x (waiting + 1) would say 72 ms against 50).
TEST_F(BalancingTest, WaitingRequestsCountAgainstTheLoadLatencyWasMeasuredAt) {
  make_balanced(LbPolicy::kP2cEwma);
  sample(b, 50'000, 1'000'000);  // the slow replica, alone in flight
  outstanding(a, 7);
  uint64_t now = 1'000'000;
  for (int i = 0; i < 60; ++i) {
    const int64_t load = cluster_->begin_request(0, *a);
    EXPECT_EQ(load, 8);
    cluster_->end_request(0, *a, 9'000, now += 1'000, load);
  }
  for (int i = 0; i < 7; ++i) cluster_->end_request(0, *a, -1, now);  // no samples
  outstanding(a, 7);
  EXPECT_EQ(spread(20, now / 1000)[1], 20);  // 9 ms x (1 + 7/8) < 50 ms
  // Far past the load it was measured at, it does cost more: 9 ms x (1 + 59/8) > 50 ms.
  outstanding(a, 52);
  EXPECT_EQ(spread(20, now / 1000)[2], 20);
}

// The load both candidates were measured at scales them alike: with equal latencies the
// one with fewer requests waiting wins, however busy each was when it was measured (a
// per-endpoint scale would make the busier one look cheaper and draw ever more).
TEST_F(BalancingTest, EqualLatenciesAreBalancedByWaitingRequests) {
  make_balanced(LbPolicy::kP2cEwma);
  outstanding(a, 7);
  uint64_t now = 1'000'000;
  for (int i = 0; i < 60; ++i) {
    const int64_t load = cluster_->begin_request(0, *a);
    cluster_->end_request(0, *a, 5'000, now += 1'000, load);
  }
  for (int i = 0; i < 7; ++i) cluster_->end_request(0, *a, -1, now);
  sample(b, 5'000, now);  // measured alone
  outstanding(a, 3);
  EXPECT_EQ(spread(20, now / 1000)[2], 20);
  outstanding(b, 4);
  EXPECT_EQ(spread(20, now / 1000)[1], 20);
}

TEST_F(BalancingTest, ASlowEndpointLeftAloneIsTriedAgain) {
  make_balanced(LbPolicy::kP2cEwma);
  sample(a, 100'000, 0);  // slow once
  sample(b, 1'000, 0);
  EXPECT_EQ(spread(20, 0)[2], 20);
  // A minute later b still answers in 1 ms (fresh samples); a, unused, has decayed to
  // 100 ms x e^-6 (about 250 us): it gets traffic again and can show it recovered.
  sample(b, 1'000, 60'000'000);
  EXPECT_EQ(spread(20, 60'000)[1], 20);
}

TEST_F(BalancingTest, AnEndpointWithoutLatencyIsScoredWithTheOthers) {
  make_balanced(LbPolicy::kP2cEwma);
  sample(a, 5'000, 1'000'000);
  // b has no sample. Scored as 0 us it would win even with a request waiting; scored
  // neutrally (a's latency) the outstanding requests decide.
  outstanding(b, 1);
  EXPECT_EQ(spread(20)[1], 20);
  outstanding(a, 2);
  EXPECT_EQ(spread(20)[2], 20);
}

TEST_F(BalancingTest, TwoChoicesSpreadEvenlyAndSkipEjectedEndpoints) {
  OutlierPolicy policy;
  policy.consecutive_connect_failures = 1;
  policy.max_ejection_percent = 100;
  make(1, policy);
  ASSERT_TRUE(set({"10.0.0.1:1", "10.0.0.2:2", "10.0.0.3:3"}));
  Endpoint* third = endpoint(3);
  cluster_->set_balancing(LbPolicy::kLeastRequest, LbLoad::kRequests);
  std::vector<int> counts(8, 0);
  for (int i = 0; i < 3000; ++i) ++counts[pick_port(0)];
  for (int port = 1; port <= 3; ++port) {
    EXPECT_GT(counts[port], 700) << port;  // a third each, give or take
    EXPECT_LT(counts[port], 1300) << port;
  }
  cluster_->report_connect(0, *third, false, 1000);  // ejected for 30 s
  counts.assign(8, 0);
  for (int i = 0; i < 300; ++i) ++counts[pick_port(0, 2000)];
  EXPECT_EQ(counts[3], 0);
  EXPECT_EQ(counts[1] + counts[2], 300);
}

TEST_F(BalancingTest, RetryTakesAnotherEndpoint) {
  make_balanced(LbPolicy::kP2cEwma, 3);
  for (int i = 0; i < 50; ++i) {
    Endpoint* first = cluster_->pick(0, 0, nullptr, 1000);
    ASSERT_NE(first, nullptr);
    Endpoint* retry = cluster_->pick(0, 1, first, 1000);
    ASSERT_NE(retry, nullptr);
    EXPECT_NE(retry, first);
    first->release(0);
    retry->release(0);
  }
}

TEST_F(BalancingTest, AnOutstandingRequestKeepsARemovedEndpoint) {
  make_balanced(LbPolicy::kLeastRequest);
  outstanding(b, 1);
  ASSERT_TRUE(set({"10.0.0.1:1"}));
  quiesce();
  cluster_->collect();
  EXPECT_EQ(cluster_->pending(), 1u);  // b: a request still counts on it
  cluster_->end_request(0, *b, -1, 0);
  EXPECT_EQ(cluster_->collect(), 1u);
}

TEST_F(BalancingTest, JsonShowsThePolicyAndTheLoad) {
  make_balanced(LbPolicy::kP2cEwma);
  sample(a, 2'000, 1'000'000);
  outstanding(a, 2);
  EXPECT_NE(json().find("\"lb_policy\":\"p2c-ewma\""), std::string::npos) << json();
  EXPECT_NE(json().find("\"outstanding\":2,\"latency_ewma_us\":2000"), std::string::npos) << json();
}

}  // namespace
}  // namespace ringside::cluster
