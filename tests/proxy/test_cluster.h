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

}  // namespace ringside::proxy
