// Test helper: a proxy Cluster for SERVICE backed by a static endpoint set, the way the
// server builds it (the endpoint set owned by Runtime::services).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "proxy/runtime.h"
#include "ringside/cluster.h"

namespace ringside::proxy {

inline Cluster* add_test_cluster(Runtime& runtime, const std::string& service,
                                 const std::vector<std::string>& endpoints,
                                 cluster::OutlierPolicy policy, WorkerQuiescence quiescence) {
  auto set = std::make_unique<cluster::Cluster>(service, 1, policy, std::move(quiescence));
  std::vector<cluster::DiscoveredEndpoint> found;
  for (const std::string& e : endpoints) {
    found.push_back({*SocketAddress::parse_numeric(e), EndpointSourceKind::kStatic});
  }
  set->update(found);
  auto proxy_cluster = std::make_unique<Cluster>();
  proxy_cluster->name = service;
  proxy_cluster->endpoints = set.get();
  proxy_cluster->index = static_cast<uint32_t>(runtime.clusters.size());
  runtime.services.push_back(std::move(set));
  runtime.clusters.push_back(std::move(proxy_cluster));
  return runtime.clusters.back().get();
}

// Quiescence for a test without workers that pass quiescent points: nothing is reclaimed.
inline WorkerQuiescence frozen_quiescence() {
  WorkerQuiescence quiescence;
  quiescence.workers = 1;
  quiescence.epoch = [](unsigned) { return uint64_t{0}; };
  return quiescence;
}

// A runtime with one plaintext HTTP egress, "egress_test", for service "svc" at endpoints,
// with its stats registries; no generated x-request-id, so upstream heads are stable.
inline std::unique_ptr<Runtime> make_http_egress_runtime(
    const std::vector<std::string>& endpoints) {
  auto runtime = std::make_unique<Runtime>();
  runtime->config.http.headers.request_id = false;
  ListenerConfig listener;
  listener.kind = ListenerKind::kEgress;
  listener.name = "egress_test";
  listener.listen = *SocketAddress::parse_numeric("127.0.0.1:1");
  listener.service = "svc";
  listener.protocol = Protocol::kHttp;
  listener.tls = false;
  Cluster* cluster =
      add_test_cluster(*runtime, "svc", endpoints, cluster::OutlierPolicy{}, frozen_quiescence());
  cluster->http_service = 0;
  ListenerRuntime lr;
  lr.config = listener;
  lr.cluster = cluster;
  lr.http_index = 0;
  runtime->listeners.push_back(lr);
  runtime->stats = std::make_unique<StatsRegistry>(1, std::vector<std::string>{"egress_test"});
  runtime->http.stats = std::make_unique<http::HttpStatsRegistry>(
      1, std::vector<std::string>{"egress_test"}, std::vector<std::string>{"svc"});
  return runtime;
}

}  // namespace ringside::proxy
