#include "ringside/cluster.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "ringside/json.h"
#include "ringside/log.h"

namespace ringside::cluster {

const char* source_name(EndpointSourceKind kind) {
  switch (kind) {
    case EndpointSourceKind::kStatic:
      return "static";
    case EndpointSourceKind::kDns:
      return "dns";
    case EndpointSourceKind::kFile:
      return "file";
  }
  return "?";
}

const char* lb_policy_name(LbPolicy policy) {
  switch (policy) {
    case LbPolicy::kRoundRobin:
      return "round-robin";
    case LbPolicy::kLeastRequest:
      return "least-request";
    case LbPolicy::kP2cEwma:
      return "p2c-ewma";
  }
  return "?";
}

OutlierPolicy OutlierPolicy::from(const OutlierConfig& config) {
  OutlierPolicy policy;
  policy.consecutive_connect_failures = config.consecutive_connect_failures;
  policy.consecutive_5xx = config.consecutive_5xx;
  policy.ejection_ms = static_cast<uint64_t>(config.ejection_time.count());
  policy.max_ejection_percent = config.max_ejection_percent;
  return policy;
}

// ---- Endpoint ---------------------------------------------------------------------------

Endpoint::Endpoint(uint32_t id_in, const SocketAddress& address_in, EndpointSourceKind source_in,
                   unsigned workers)
    : id(id_in),
      address(address_in),
      text(address_in.to_string()),
      source(source_in),
      per_worker_(std::make_unique<PerWorker[]>(workers == 0 ? 1 : workers)),
      workers_(workers == 0 ? 1 : workers) {}

bool Endpoint::in_use() const {
  for (unsigned w = 0; w < workers_; ++w) {
    if (at(w).live.load(std::memory_order_acquire) != 0) return true;
    if (at(w).outstanding.load(std::memory_order_acquire) != 0) return true;
  }
  return false;
}

int64_t Endpoint::live_connections() const {
  int64_t total = 0;
  for (unsigned w = 0; w < workers_; ++w) total += at(w).live.load(std::memory_order_acquire);
  return total;
}

Endpoint::Totals Endpoint::totals(uint64_t now_ms) const {
  Totals t;
  unsigned measured = 0;
  for (unsigned w = 0; w < workers_; ++w) {
    const PerWorker& p = at(w);
    t.live_connections += p.live.load(std::memory_order_relaxed);
    t.connect_ok += p.connect_ok.get();
    t.connect_failed += p.connect_failed.get();
    t.responses += p.responses.get();
    t.responses_5xx += p.responses_5xx.get();
    t.ejections += p.ejections.get();
    t.outstanding += p.outstanding.load(std::memory_order_relaxed);
    if (const uint64_t ewma = p.ewma_us.load(std::memory_order_relaxed); ewma != 0) {
      t.latency_ewma_us += ewma;
      ++measured;
    }
    const uint64_t until = p.ejected_until_ms.load(std::memory_order_relaxed);
    if (until > now_ms) {
      ++t.ejected_workers;
      t.ejected_ms_left = std::max(t.ejected_ms_left, until - now_ms);
    }
  }
  if (measured != 0) t.latency_ewma_us /= measured;
  return t;
}

// ---- Cluster: worker side -----------------------------------------------------------------

Cluster::Cluster(std::string name, unsigned workers, OutlierPolicy policy,
                 WorkerQuiescence quiescence)
    : name_(std::move(name)),
      workers_(workers == 0 ? 1 : workers),
      policy_(policy),
      quiescence_(std::move(quiescence)),
      cursors_(std::make_unique<WorkerCursor[]>(workers_)) {
  // Workers start at different places so that their first connections spread, and draw
  // different random sequences.
  for (unsigned w = 0; w < workers_; ++w) {
    cursors_[w].next = w;
    cursors_[w].rng = 0x9e3779b97f4a7c15ull * (w + 1) ^ reinterpret_cast<uintptr_t>(this);
  }
  current_owned_ = std::make_unique<EndpointSet>();
  current_.store(current_owned_.get(), std::memory_order_release);
}

Cluster::~Cluster() = default;

Endpoint* Cluster::pick(unsigned worker, unsigned attempt, const Endpoint* previous,
                        uint64_t now_ms) {
  const EndpointSet* set = current_.load(std::memory_order_acquire);
  const auto& endpoints = set->endpoints;
  const size_t n = endpoints.size();
  WorkerCursor& cursor = cursors_[worker];
  if (n == 0) {
    if (attempt == 0) cursor.no_endpoint.add();
    return nullptr;
  }
  if (attempt >= std::min<size_t>(n, kMaxAttempts)) return nullptr;
  if (lb_ != LbPolicy::kRoundRobin && n > 1) {
    if (Endpoint* chosen = pick_two(worker, attempt != 0 ? previous : nullptr, now_ms)) {
      chosen->hold(worker);
      return chosen;
    }
    // No two eligible endpoints drawn (most ejected): round robin finds what is left.
  }
  size_t start = 0;
  bool after_previous = false;
  for (size_t i = 0; attempt != 0 && previous != nullptr && i < n && !after_previous; ++i) {
    after_previous = endpoints[i] == previous;
    start = i + 1;
  }
  if (!after_previous) start = cursor.next++;
  Endpoint* chosen = nullptr;
  for (size_t k = 0; k < n && chosen == nullptr; ++k) {
    Endpoint* candidate = endpoints[(start + k) % n];
    if (!candidate->ejected(worker, now_ms) && !candidate->unhealthy()) chosen = candidate;
  }
  // Every endpoint ejected on this worker (only possible when the set shrank under
  // the ejections): better to try one than to refuse the connection.
  if (chosen == nullptr) chosen = endpoints[start % n];
  chosen->hold(worker);
  return chosen;
}

namespace {

// Finagle's and Linkerd's decay time of the peak-EWMA: a latency sample weighs
// 1 - exp(-elapsed / tau), and without samples the estimate decays with the same time
// constant, so an endpoint that was slow is tried again once it has been left alone.
constexpr double kEwmaTauUs = 10e6;
// The least weight a faster sample has, however soon it follows the last one. Finagle's
// weight alone (elapsed / tau for close samples) lets one slow answer hold a busy
// endpoint's estimate up for most of tau: at 800 answers a second each weighs 1/8,000,
// and a 25 ms hiccup of a 5 ms replica made it look slower than a replica 10x slower
// for seconds (docs/benchmarks/grpc-balance-2026-12-02.md). With a floor of 1/16 per
// sample, some 30 answers wash a peak out, while a replica that really slows down still
// has every slower sample taken at once, and one answering rarely still moves with time.
constexpr double kMinSampleWeight = 1.0 / 16;

uint64_t next_random(uint64_t& state) {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

double decayed(uint64_t ewma_us, uint64_t stamp_us, uint64_t now_us) {
  if (ewma_us == 0 || now_us <= stamp_us) return static_cast<double>(ewma_us);
  return static_cast<double>(ewma_us) *
         std::exp(-static_cast<double>(now_us - stamp_us) / kEwmaTauUs);
}

}  // namespace

double Cluster::cost(unsigned worker, const Endpoint& endpoint, uint64_t now_us, double neutral_us,
                     double concurrency) const {
  const Endpoint::PerWorker& state = endpoint.at(worker);
  const int64_t load = lb_load_ == LbLoad::kConnections
                           ? state.live.load(std::memory_order_relaxed)
                           : state.outstanding.load(std::memory_order_relaxed);
  const double waiting = static_cast<double>(std::max<int64_t>(load, 0));
  if (lb_ == LbPolicy::kLeastRequest) return waiting + 1;
  const double latency =
      state.ewma_us.load(std::memory_order_relaxed) == 0
          ? neutral_us
          : decayed(state.ewma_us.load(std::memory_order_relaxed), state.ewma_stamp_us, now_us);
  // Finagle's cost is latency x (waiting + 1): as if an endpoint served one request after
  // another. A gRPC or HTTP/2 server serves its streams at once, and its latency samples,
  // taken with several requests in flight, already hold its queueing: with 8 calls in
  // flight, 7 waiting on a 9 ms replica made it cost 72 ms against an idle 50 ms one. So
  // each waiting request counts 1 / concurrency, concurrency being the load the two
  // candidates' samples were taken at (the larger of the two; 1 when requests come one at
  // a time, which is Finagle's cost). It is the same for both candidates: an endpoint
  // measured at a higher load must not look cheaper per request for it, or it would draw
  // ever more of the traffic.
  return (latency + 1) * (1 + waiting / concurrency);
}

Endpoint* Cluster::pick_two(unsigned worker, const Endpoint* previous, uint64_t now_ms) {
  const auto& endpoints = current_.load(std::memory_order_acquire)->endpoints;
  const size_t n = endpoints.size();
  WorkerCursor& cursor = cursors_[worker];
  auto eligible = [&](const Endpoint* e) {
    return e != previous && !e->ejected(worker, now_ms) && !e->unhealthy();
  };
  // Two distinct endpoints at random (with two, both every time). A pair with an
  // ineligible one is drawn again a few times; then the one eligible endpoint seen is
  // taken, or none (round robin finds what is left).
  Endpoint* a = nullptr;
  Endpoint* b = nullptr;
  Endpoint* single = nullptr;
  for (int tries = 0; tries < 4 && b == nullptr; ++tries) {
    const uint64_t r = next_random(cursor.rng);
    const size_t i = r % n;
    const size_t j = (i + 1 + (r >> 32) % (n - 1)) % n;
    const bool ok_i = eligible(endpoints[i]);
    const bool ok_j = eligible(endpoints[j]);
    if (ok_i && ok_j) {
      a = endpoints[i];
      b = endpoints[j];
    } else if (ok_i || ok_j) {
      single = endpoints[ok_i ? i : j];
    }
  }
  if (b == nullptr) return single;
  const uint64_t now_us = now_ms * 1000;
  // An endpoint without a latency yet (new from discovery) is scored with the other's:
  // only the outstanding requests tell them apart.
  const uint64_t ea = a->at(worker).ewma_us.load(std::memory_order_relaxed);
  const uint64_t eb = b->at(worker).ewma_us.load(std::memory_order_relaxed);
  const double neutral_a = decayed(eb, b->at(worker).ewma_stamp_us, now_us);
  const double neutral_b = decayed(ea, a->at(worker).ewma_stamp_us, now_us);
  const double concurrency = std::max({1.0, a->at(worker).load_ewma, b->at(worker).load_ewma});
  return cost(worker, *a, now_us, neutral_a, concurrency) <=
                 cost(worker, *b, now_us, neutral_b, concurrency)
             ? a
             : b;
}

int64_t Cluster::begin_request(unsigned worker, Endpoint& endpoint) {
  auto& outstanding = endpoint.at(worker).outstanding;
  const int64_t load = outstanding.load(std::memory_order_relaxed) + 1;
  outstanding.store(load, std::memory_order_relaxed);
  return load;
}

void Cluster::end_request(unsigned worker, Endpoint& endpoint, int64_t latency_us, uint64_t now_us,
                          int64_t load_at_pick) {
  Endpoint::PerWorker& state = endpoint.at(worker);
  // A release store, as Endpoint::release: the reclaimer reading zero sees every use.
  state.outstanding.store(state.outstanding.load(std::memory_order_relaxed) - 1,
                          std::memory_order_release);
  if (latency_us < 0) return;
  // Peak EWMA: a slower sample is taken at once; a faster one pulls the estimate down
  // by the weight of the time since the last sample, and at least kMinSampleWeight.
  const auto sample = static_cast<double>(std::max<int64_t>(latency_us, 1));
  const double current =
      decayed(state.ewma_us.load(std::memory_order_relaxed), state.ewma_stamp_us, now_us);
  const double elapsed =
      static_cast<double>(now_us > state.ewma_stamp_us ? now_us - state.ewma_stamp_us : 0);
  const double w = std::min(std::exp(-elapsed / kEwmaTauUs), 1 - kMinSampleWeight);
  double next = sample;
  if (current != 0 && sample < current) next = current * w + sample * (1 - w);
  // The load the samples were taken at: a plain EWMA with the same weights (no peak).
  const auto load = static_cast<double>(std::max<int64_t>(load_at_pick, 1));
  state.load_ewma = state.load_ewma == 0 ? load : state.load_ewma * w + load * (1 - w);
  state.ewma_us.store(std::max<uint64_t>(static_cast<uint64_t>(next), 1),
                      std::memory_order_relaxed);
  state.ewma_stamp_us = now_us;
}

void Cluster::report_connect(unsigned worker, Endpoint& endpoint, bool ok, uint64_t now_ms) {
  Endpoint::PerWorker& state = endpoint.at(worker);
  if (ok) {
    state.connect_ok.add();
    state.consecutive_connect_failures = 0;
    return;
  }
  state.connect_failed.add();
  ++state.consecutive_connect_failures;
  if (policy_.consecutive_connect_failures != 0 &&
      state.consecutive_connect_failures >= policy_.consecutive_connect_failures) {
    maybe_eject(worker, endpoint, now_ms, "consecutive connect failures");
  }
}

void Cluster::report_response(unsigned worker, Endpoint& endpoint, int status, uint64_t now_ms) {
  Endpoint::PerWorker& state = endpoint.at(worker);
  state.responses.add();
  if (status < 500 || status > 599) {
    state.consecutive_5xx = 0;
    return;
  }
  state.responses_5xx.add();
  ++state.consecutive_5xx;
  if (policy_.consecutive_5xx != 0 && state.consecutive_5xx >= policy_.consecutive_5xx) {
    maybe_eject(worker, endpoint, now_ms, "consecutive 5xx responses");
  }
}

void Cluster::maybe_eject(unsigned worker, Endpoint& endpoint, uint64_t now_ms, const char* why) {
  if (endpoint.ejected(worker, now_ms)) return;
  const EndpointSet* set = current_.load(std::memory_order_acquire);
  size_t ejected = 0;
  for (const Endpoint* e : set->endpoints) ejected += e->ejected(worker, now_ms) ? 1 : 0;
  // The cap counts this worker's view of the current set: at most max% of it ejected.
  if ((ejected + 1) * 100 > set->endpoints.size() * policy_.max_ejection_percent) {
    RS_LOG_RATE_LIMITED(log::Level::kWarn, 1,
                        "cluster %s: endpoint %s not ejected (%s): %zu of %zu already are, the "
                        "limit is %u%%",
                        name_.c_str(), endpoint.address.to_string().c_str(), why, ejected,
                        set->endpoints.size(), policy_.max_ejection_percent);
    return;
  }
  Endpoint::PerWorker& state = endpoint.at(worker);
  state.ejected_until_ms.store(now_ms + policy_.ejection_ms, std::memory_order_relaxed);
  state.ejections.add();
  state.consecutive_connect_failures = 0;
  state.consecutive_5xx = 0;
  RS_LOG_RATE_LIMITED(log::Level::kWarn, 2, "cluster %s: endpoint %s ejected for %llu ms (%s)",
                      name_.c_str(), endpoint.address.to_string().c_str(),
                      static_cast<unsigned long long>(policy_.ejection_ms), why);
}

// ---- Cluster: control side ----------------------------------------------------------------

bool Cluster::update(const std::vector<DiscoveredEndpoint>& discovered) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto set = std::make_unique<EndpointSet>();
  std::vector<std::string> seen;
  for (const DiscoveredEndpoint& d : discovered) {
    const std::string key = d.address.to_string();
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
    seen.push_back(key);
    Endpoint* endpoint = nullptr;
    for (const auto& existing : endpoints_) {
      if (existing->address.to_string() == key) endpoint = existing.get();
    }
    if (endpoint == nullptr) {
      endpoints_.push_back(std::make_unique<Endpoint>(next_id_++, d.address, d.source, workers_));
      endpoint = endpoints_.back().get();
    }
    set->endpoints.push_back(endpoint);
  }
  const EndpointSet* old = current_owned_.get();
  if (old->endpoints == set->endpoints) return false;

  for (Endpoint* endpoint : set->endpoints) {
    endpoint->in_set_.store(true, std::memory_order_relaxed);
    // Back before it drained away: it is no longer waiting to be freed.
    removed_.erase(std::remove_if(removed_.begin(), removed_.end(),
                                  [endpoint](const Removed& r) { return r.endpoint == endpoint; }),
                   removed_.end());
  }
  set->version = ++version_;
  current_.store(set.get(), std::memory_order_release);
  std::vector<Endpoint*> dropped;
  for (Endpoint* endpoint : old->endpoints) {
    if (std::find(set->endpoints.begin(), set->endpoints.end(), endpoint) == set->endpoints.end()) {
      endpoint->in_set_.store(false, std::memory_order_relaxed);
      dropped.push_back(endpoint);
    }
  }
  // One grace period for both: it starts after the store above (GracePeriod fences).
  GracePeriod grace(quiescence_);
  for (Endpoint* endpoint : dropped) removed_.push_back(Removed{endpoint, grace});
  retired_sets_.push_back(RetiredSet{std::move(current_owned_), grace});
  current_owned_ = std::move(set);
  std::string now;
  for (const Endpoint* endpoint : current_owned_->endpoints) {
    now += (now.empty() ? "" : " ") + endpoint->address.to_string();
  }
  RS_INFO("cluster %s: endpoints now [%s] (version %llu, %zu draining)", name_.c_str(), now.c_str(),
          static_cast<unsigned long long>(version_), removed_.size());
  return true;
}

size_t Cluster::collect() {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t freed = 0;
  for (size_t i = 0; i < retired_sets_.size();) {
    if (!retired_sets_[i].grace.passed(quiescence_)) {
      ++i;
      continue;
    }
    retired_sets_.erase(retired_sets_.begin() + static_cast<std::ptrdiff_t>(i));
    ++freed;
  }
  for (size_t i = 0; i < removed_.size();) {
    Removed& removed = removed_[i];
    // After the grace period no worker can pick it again, so a count that reads zero
    // stays zero; the acquire loads pair with release().
    if (!removed.grace.passed(quiescence_) || removed.endpoint->in_use()) {
      ++i;
      continue;
    }
    Endpoint* endpoint = removed.endpoint;
    removed_.erase(removed_.begin() + static_cast<std::ptrdiff_t>(i));
    endpoints_.erase(std::find_if(endpoints_.begin(), endpoints_.end(),
                                  [endpoint](const auto& e) { return e.get() == endpoint; }));
    ++freed;
  }
  return freed;
}

size_t Cluster::pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return retired_sets_.size() + removed_.size();
}

void Cluster::set_sources(std::vector<SourceStatus> sources) {
  std::lock_guard<std::mutex> lock(mutex_);
  sources_ = std::move(sources);
}

std::vector<std::string> Cluster::addresses() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  for (const Endpoint* endpoint : current_owned_->endpoints) {
    out.push_back(endpoint->address.to_string());
  }
  return out;
}

std::vector<std::pair<uint32_t, SocketAddress>> Cluster::members() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::pair<uint32_t, SocketAddress>> out;
  for (const Endpoint* endpoint : current_owned_->endpoints) {
    out.emplace_back(endpoint->id, endpoint->address);
  }
  return out;
}

void Cluster::set_health(uint32_t id, bool healthy, const std::string& why) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& endpoint : endpoints_) {
    if (endpoint->id != id) continue;
    endpoint->unhealthy_.store(!healthy, std::memory_order_relaxed);
    endpoint->health_ = healthy ? "passing" : "failing: " + why;
    return;
  }
}

Cluster::Health Cluster::health(uint64_t now_ms) const {
  std::lock_guard<std::mutex> lock(mutex_);
  Health health;
  for (const Endpoint* endpoint : current_owned_->endpoints) {
    ++health.endpoints;
    if (endpoint->totals(now_ms).ejected_workers != 0) ++health.ejected;
    if (endpoint->unhealthy()) ++health.unhealthy;
  }
  return health;
}

std::string Cluster::render_json(uint64_t now_ms) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out = "{\"name\":\"" + json_escape(name_) +
                    "\",\"version\":" + std::to_string(current_owned_->version) +
                    ",\"lb_policy\":\"" + lb_policy_name(lb_) + "\"";
  uint64_t no_endpoint = 0;
  for (unsigned w = 0; w < workers_; ++w) no_endpoint += cursors_[w].no_endpoint.get();
  out += ",\"no_endpoint\":" + std::to_string(no_endpoint) + ",\"sources\":[";
  for (size_t i = 0; i < sources_.size(); ++i) {
    const SourceStatus& s = sources_[i];
    out += std::string(i ? "," : "") + "{\"source\":\"" + json_escape(s.text) + "\",\"kind\":\"" +
           source_name(s.kind) + "\",\"endpoints\":" + std::to_string(s.endpoints) +
           ",\"refreshes\":" + std::to_string(s.refreshes) +
           ",\"failures\":" + std::to_string(s.failures) + ",\"last_error\":\"" +
           json_escape(s.last_error) + "\"}";
  }
  out += "],\"endpoints\":[";
  bool first = true;
  for (const auto& endpoint : endpoints_) {
    const Endpoint::Totals t = endpoint->totals(now_ms);
    const bool active = endpoint->in_set();
    const char* state = !active                  ? (t.live_connections > 0 ? "draining" : "removed")
                        : endpoint->unhealthy()  ? "unhealthy"
                        : t.ejected_workers != 0 ? "ejected"
                                                 : "active";
    out += std::string(first ? "" : ",") + "{\"id\":" + std::to_string(endpoint->id) +
           ",\"address\":\"" + json_escape(endpoint->address.to_string()) + "\",\"source\":\"" +
           source_name(endpoint->source) + "\",\"state\":\"" + state +
           "\",\"ejected_workers\":" + std::to_string(t.ejected_workers) +
           ",\"ejected_ms_left\":" + std::to_string(t.ejected_ms_left) +
           ",\"active_connections\":" + std::to_string(t.live_connections) +
           ",\"connect_ok\":" + std::to_string(t.connect_ok) +
           ",\"connect_failed\":" + std::to_string(t.connect_failed) +
           ",\"responses\":" + std::to_string(t.responses) +
           ",\"responses_5xx\":" + std::to_string(t.responses_5xx) +
           ",\"ejections\":" + std::to_string(t.ejections) +
           ",\"outstanding\":" + std::to_string(t.outstanding) +
           ",\"latency_ewma_us\":" + std::to_string(t.latency_ewma_us) + ",\"health\":\"" +
           json_escape(endpoint->health_.empty() ? "unchecked" : endpoint->health_) + "\"}";
    first = false;
  }
  out += "]}";
  return out;
}

}  // namespace ringside::cluster
