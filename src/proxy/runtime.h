// What the workers share: read-only after start-up, except the TLS context slots and the
// clusters' endpoint sets, which the control side republishes with one atomic pointer
// store each (see DESIGN.md, RCU).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ringside/access_log.h"
#include "ringside/cluster.h"
#include "ringside/config.h"
#include "ringside/grpc_stats.h"
#include "ringside/http_route.h"
#include "ringside/http_stats.h"
#include "ringside/stats.h"
#include "ringside/tls.h"
#include "ringside/tls_generation.h"

namespace ringside::proxy {

// One published generation of TLS material for one listener, and the RCU cell workers
// read it from at handshake start. Both live in ringside/tls_generation.h with the
// reclaimer: a connection calls hold()/release() on its generation (per-worker counts),
// and an old generation is freed only after every worker passed a quiescent point and
// none holds it (the rotation agent's GenerationReclaimer).
using TlsGeneration = ::ringside::TlsGeneration;
using ContextSlot = ::ringside::ContextSlot;

// A service (or an HTTP ingress's local app) as the proxy addresses it. Its endpoints are
// a cluster::Cluster (the published endpoint set, round robin, outlier detection), one
// per service and shared by every proxy Cluster of that service.
struct Cluster {
  std::string name;
  cluster::Cluster* endpoints = nullptr;  // owned by Runtime::services
  uint32_t index = 0;                     // in Runtime::clusters
  int32_t http_service = -1;              // index in HttpStatsRegistry::service_names; -1: none
};

struct ListenerRuntime {
  ListenerConfig config;
  const Cluster* cluster = nullptr;  // egress: where traffic goes
  ContextSlot* tls = nullptr;        // server (ingress) or client (egress) contexts; null: plain
  std::string verify_name;           // egress: DNS SAN required of the upstream
  std::string verify_uri;            // egress: URI SAN (SPIFFE ID) required of the upstream
  std::string sni;                   // egress: SNI sent
  int32_t http_index = -1;           // protocol=http: index in HttpStatsRegistry listeners
  // HTTP listeners: how upstream connections may speak HTTP/2. kPrior: always (h2c to an
  // app of protocol=http2|grpc); kAlpn: when the TLS peer picks h2; kNever: HTTP/1.1.
  enum class UpstreamH2 : uint8_t { kNever, kAlpn, kPrior };
  UpstreamH2 upstream_h2 = UpstreamH2::kNever;
  // ingress: the client's identity is needed (needs_peer_identity); XFCC is added.
  bool needs_identity = false;
  bool xfcc = false;
};

// Per-rule request counters of the --authz-rule policies, per worker: rules[w][l][r] is
// worker w's count for rule r of listener l.
struct AuthzRuleCounters {
  Counter allowed, denied, would_deny;
};
struct AuthzStats {
  std::vector<std::vector<std::vector<AuthzRuleCounters>>> rules;
};

// What HTTP listeners share: the route table (egress) and where each route goes.
struct HttpRuntime {
  http::RouteTable routes;
  std::vector<std::pair<const http::Route*, const Cluster*>> route_clusters;
  std::unique_ptr<http::HttpStatsRegistry> stats;
  std::unique_ptr<grpc::GrpcStatsRegistry> grpc_stats;  // per service and method
  std::unique_ptr<http::AccessLogWriter> access_log;    // null: --access-log off
  http::Limits limits;

  const Cluster* cluster_of(const http::Route* route) const {
    for (const auto& [r, c] : route_clusters) {
      if (r == route) return c;
    }
    return nullptr;
  }
};

struct Runtime {
  Config config;
  std::vector<ListenerRuntime> listeners;
  // Endpoint sets: one per service, plus one per HTTP ingress's local app.
  std::vector<std::unique_ptr<cluster::Cluster>> services;
  cluster::Cluster* find_service(const std::string& name) const {
    for (const auto& c : services) {
      if (c->name() == name) return c.get();
    }
    return nullptr;
  }
  std::vector<std::unique_ptr<Cluster>> clusters;
  std::vector<std::unique_ptr<ContextSlot>> slots;
  std::unique_ptr<StatsRegistry> stats;
  HttpRuntime http;
  AuthzStats authz;
  unsigned workers = 1;
};

}  // namespace ringside::proxy
