// Upstream clusters: the endpoints of one service as the workers see them. Endpoint
// discovery (static flags, dns:, file:) publishes an immutable EndpointSet per cluster
// with one release store; a worker picks from it with one acquire load, round robin
// over the endpoints its passive outlier detection has not ejected. See
// docs/service-connect.md for the design.
//
// Worker-side API (worker w only, no lock, no atomic read-modify-write; usable from the
// L4 relay and from the HTTP proxy alike):
//
//   Endpoint* e = cluster.pick(w, attempt, previous, now_ms);  // held; null: none left
//   ... connect to e->address ...
//   cluster.report_connect(w, *e, ok, now_ms);     // TCP connect (+ TLS handshake) result
//   cluster.report_response(w, *e, status, now_ms); // HTTP: every response status
//   e->release(w);                                  // the connection is gone
//
// A removed endpoint is never picked again, but connections that hold it keep it alive
// (and keep using it) until they release it: removal drains, it does not cut.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ringside/address.h"
#include "ringside/config.h"
#include "ringside/quiescence.h"
#include "ringside/stats.h"

namespace ringside::cluster {

const char* source_name(EndpointSourceKind kind);  // "static", "dns", "file"

// How a worker chooses an endpoint (docs/service-connect.md, Balancing).
//   round-robin:   the worker's turn over the endpoints it has not ejected;
//   least-request: power of two choices, the one with fewer outstanding requests;
//   p2c-ewma:      power of two choices, the lower peak-EWMA latency x
//                  (1 + outstanding / the load the latency was measured at): Linkerd's
//                  and Finagle's default, for servers that answer requests concurrently.
using ringside::LbPolicy;
const char* lb_policy_name(LbPolicy policy);  // "round-robin", "least-request", "p2c-ewma"
// What "outstanding" counts for the choice: requests in flight (HTTP services), or
// connections held (services only TCP listeners send to: a connection is the unit).
enum class LbLoad : uint8_t { kRequests, kConnections };

struct OutlierPolicy {
  unsigned consecutive_connect_failures = 5;  // 0: off
  unsigned consecutive_5xx = 5;               // 0: off
  uint64_t ejection_ms = 30000;
  unsigned max_ejection_percent = 50;

  static OutlierPolicy from(const OutlierConfig& config);
};

// One upstream address of a cluster. id, address and source never change. The rest is
// state kept per worker (each worker's on its own cache line, written only by that
// worker with a plain load and store, read by the admin thread), plus the "in set" flag
// the discovery thread writes.
class Endpoint {
 public:
  Endpoint(uint32_t id, const SocketAddress& address, EndpointSourceKind source, unsigned workers);
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  const uint32_t id;  // unique within its cluster, never reused
  const SocketAddress address;
  const std::string text;           // address.to_string(), for logs and access logs
  const EndpointSourceKind source;  // the first source that named it

  // Worker `worker` only. pick() returns an endpoint already held; whoever keeps it
  // (a connection, a pooled HTTP connection) calls release() exactly once when done.
  void hold(unsigned worker) {
    auto& live = at(worker).live;
    live.store(live.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  // A release store: the reclaimer, reading zero with acquire, sees every use before it.
  void release(unsigned worker) {
    auto& live = at(worker).live;
    live.store(live.load(std::memory_order_relaxed) - 1, std::memory_order_release);
  }
  // True while worker `worker` has this endpoint ejected.
  bool ejected(unsigned worker, uint64_t now_ms) const {
    return at(worker).ejected_until_ms.load(std::memory_order_relaxed) > now_ms;
  }
  // False once discovery has dropped it: pools should not reuse idle connections to it.
  bool in_set() const { return in_set_.load(std::memory_order_relaxed); }
  // True while active health checks find it unhealthy (Cluster::set_health): not picked.
  bool unhealthy() const { return unhealthy_.load(std::memory_order_relaxed); }
  // Worker `worker` only: requests in flight to it (Cluster::begin_request/end_request).
  int64_t outstanding(unsigned worker) const {
    return at(worker).outstanding.load(std::memory_order_relaxed);
  }
  // Worker `worker` only: the peak-EWMA of its response latency, in microseconds; 0
  // until the first response (a neutral score).
  uint64_t latency_ewma_us(unsigned worker) const {
    return at(worker).ewma_us.load(std::memory_order_relaxed);
  }

  // Any thread.
  struct Totals {
    int64_t live_connections = 0;
    uint64_t connect_ok = 0, connect_failed = 0, responses = 0, responses_5xx = 0;
    uint64_t ejections = 0;
    unsigned ejected_workers = 0;  // workers that have it ejected now
    uint64_t ejected_ms_left = 0;  // the longest remaining ejection
    int64_t outstanding = 0;       // requests in flight, over the workers
    uint64_t latency_ewma_us = 0;  // the workers' peak-EWMA latency, averaged over those
                                   // that measured one (0: none yet)
  };
  Totals totals(uint64_t now_ms) const;
  int64_t live_connections() const;
  // A connection holds it or a request is outstanding on it: not to be freed.
  bool in_use() const;

 private:
  friend class Cluster;
  struct alignas(64) PerWorker {
    std::atomic<int64_t> live{0};  // connections holding it
    std::atomic<uint64_t> ejected_until_ms{0};
    // Balancing: written by the worker with plain load+store, read by the admin thread.
    std::atomic<int64_t> outstanding{0};
    std::atomic<uint64_t> ewma_us{0};
    uint64_t ewma_stamp_us = 0;  // worker-private: the last sample's time
    double load_ewma = 0;        // worker-private: the load its latency samples were taken at
    uint32_t consecutive_connect_failures = 0;  // worker-private
    uint32_t consecutive_5xx = 0;               // worker-private
    Counter connect_ok, connect_failed, responses, responses_5xx, ejections;
  };
  PerWorker& at(unsigned worker) { return per_worker_[worker]; }
  const PerWorker& at(unsigned worker) const { return per_worker_[worker]; }

  std::unique_ptr<PerWorker[]> per_worker_;
  const unsigned workers_;
  std::atomic<bool> in_set_{false};
  std::atomic<bool> unhealthy_{false};
  // Guarded by the cluster's mutex: "" unchecked, "passing", or "failing: why".
  std::string health_;
};

// What the workers read: immutable once published.
struct EndpointSet {
  uint64_t version = 0;
  std::vector<Endpoint*> endpoints;  // owned by the Cluster
};

// What discovery hands to Cluster::update(): one address and where it came from.
struct DiscoveredEndpoint {
  SocketAddress address;
  EndpointSourceKind source = EndpointSourceKind::kStatic;
};

// The state of one endpoint source, for /clusters (written by discovery).
struct SourceStatus {
  std::string text;  // "10.0.0.7:15443", "dns:replicas.ns:15443", "file:/run/endpoints"
  EndpointSourceKind kind = EndpointSourceKind::kStatic;
  size_t endpoints = 0;    // in its last good result
  uint64_t refreshes = 0;  // successful resolutions or file loads
  uint64_t failures = 0;   // failed or empty ones (the last good result was kept)
  std::string last_error;  // empty once a refresh succeeded again
};

class Cluster {
 public:
  // At most this many connect attempts per new upstream connection (bounded further by
  // the number of endpoints): the first pick and up to 7 retries on the next endpoints.
  static constexpr unsigned kMaxAttempts = 8;

  Cluster(std::string name, unsigned workers, OutlierPolicy policy, WorkerQuiescence quiescence);
  // Frees every set and endpoint: only once the workers have stopped.
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  const std::string& name() const { return name_; }

  // ---- worker side ----------------------------------------------------------------------
  // The endpoint for attempt `attempt` (0: the first) of a new upstream connection on
  // worker `worker`: attempt 0 takes the worker's round-robin turn, a retry the endpoint
  // after `previous` in the current set (previous is only compared, never dereferenced);
  // both skip endpoints this worker has ejected (if every one is ejected, ejection is
  // ignored rather than failing the connection). Null when the set is empty or when
  // attempt >= min(set size, kMaxAttempts). The result is held for `worker`.
  // With least-request or p2c-ewma, the choice is between two endpoints drawn at random
  // from the non-ejected ones (a retry: other than `previous`).
  Endpoint* pick(unsigned worker, unsigned attempt, const Endpoint* previous, uint64_t now_ms);
  // Balancing, before workers start: the policy and what it counts as load.
  void set_balancing(LbPolicy policy, LbLoad load) {
    lb_ = policy;
    lb_load_ = load;
  }
  LbPolicy lb_policy() const { return lb_; }
  // A request to `endpoint` starts / ends on worker `worker`. begin_request returns the
  // requests in flight to it on this worker counting this one (the load it was picked
  // at), to be handed back as load_at_pick; latency_us >= 0 is the time from its start to
  // the response head, a sample for the endpoint's peak-EWMA (now_us: the worker's
  // monotonic clock in microseconds).
  int64_t begin_request(unsigned worker, Endpoint& endpoint);
  void end_request(unsigned worker, Endpoint& endpoint, int64_t latency_us, uint64_t now_us,
                   int64_t load_at_pick = 1);
  // The outcome of a connect to `endpoint` (TCP connect, and the TLS handshake when
  // the upstream speaks TLS: ok means ready to carry traffic).
  void report_connect(unsigned worker, Endpoint& endpoint, bool ok, uint64_t now_ms);
  // The status of a response from `endpoint` (HTTP).
  void report_response(unsigned worker, Endpoint& endpoint, int status, uint64_t now_ms);
  // True when the current set has no endpoint.
  bool empty() const { return current_.load(std::memory_order_acquire)->endpoints.empty(); }
  // Picks that found no endpoint at all (empty set), per worker.
  uint64_t no_endpoint(unsigned worker) const { return cursors_[worker].no_endpoint.get(); }

  // ---- control side (one thread at a time: start-up, then discovery) -------------------
  // Makes `endpoints` the set (duplicates by address keep the first). Endpoints that were
  // in the set keep their identity and per-worker state; new ones get new ids; dropped
  // ones drain. Returns false (and publishes nothing) when nothing changed.
  bool update(const std::vector<DiscoveredEndpoint>& endpoints);
  // The current set's endpoints as (id, address), for the health checker.
  std::vector<std::pair<uint32_t, SocketAddress>> members() const;
  // The health checker's verdict on endpoint `id` (why: the last failure), for pick()
  // and /clusters.
  void set_health(uint32_t id, bool healthy, const std::string& why);
  // Frees replaced sets and drained endpoints no worker can reach any more; returns how
  // many objects were freed.
  size_t collect();
  // Objects waiting for collect().
  size_t pending() const;
  void set_sources(std::vector<SourceStatus> sources);

  // ---- any thread -----------------------------------------------------------------------
  // GET /clusters: {"name":..,"version":..,"sources":[..],"endpoints":[..]}
  std::string render_json(uint64_t now_ms) const;
  // GET /stats: the endpoints of the current set, and how many of them at least one
  // worker has ejected now (passive outlier detection).
  struct Health {
    uint64_t endpoints = 0;
    uint64_t ejected = 0;
    uint64_t unhealthy = 0;  // failing active health checks
  };
  Health health(uint64_t now_ms) const;
  // The current set's addresses, in order (tests, logs).
  std::vector<std::string> addresses() const;

 private:
  struct alignas(64) WorkerCursor {
    uint32_t next = 0;  // round-robin position, worker-private
    uint64_t rng = 0;   // power of two choices: xorshift state, worker-private
    Counter no_endpoint;
  };
  double cost(unsigned worker, const Endpoint& endpoint, uint64_t now_us, double neutral_us,
              double concurrency) const;
  Endpoint* pick_two(unsigned worker, const Endpoint* previous, uint64_t now_ms);
  struct RetiredSet {
    std::unique_ptr<EndpointSet> set;
    GracePeriod grace;
  };
  struct Removed {
    Endpoint* endpoint;
    GracePeriod grace;
  };
  void maybe_eject(unsigned worker, Endpoint& endpoint, uint64_t now_ms, const char* why);

  const std::string name_;
  const unsigned workers_;
  const OutlierPolicy policy_;
  LbPolicy lb_ = LbPolicy::kRoundRobin;
  LbLoad lb_load_ = LbLoad::kRequests;
  const WorkerQuiescence quiescence_;
  std::unique_ptr<WorkerCursor[]> cursors_;
  std::atomic<const EndpointSet*> current_{nullptr};

  // Control side; mutex_ orders it against render_json() (never taken by a worker).
  mutable std::mutex mutex_;
  std::unique_ptr<EndpointSet> current_owned_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;  // every endpoint not yet freed
  std::vector<RetiredSet> retired_sets_;
  std::vector<Removed> removed_;
  std::vector<SourceStatus> sources_;
  uint32_t next_id_ = 1;
  uint64_t version_ = 0;
};

}  // namespace ringside::cluster
