// What the workers share: read-only after start-up, except the TLS context slots and the
// clusters' endpoint sets, which the control side republishes with one atomic pointer
// store each (see DESIGN.md, RCU).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ringside/cluster.h"
#include "ringside/config.h"
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

struct ListenerRuntime {
  ListenerConfig config;
  cluster::Cluster* cluster = nullptr;  // egress: where traffic goes
  ContextSlot* tls = nullptr;           // server (ingress) or client (egress) contexts; null: plain
  std::string verify_name;              // egress: DNS SAN required of the upstream
  std::string sni;                      // egress: SNI sent
};

struct Runtime {
  Config config;
  std::vector<ListenerRuntime> listeners;
  std::vector<std::unique_ptr<cluster::Cluster>> clusters;  // one per service
  cluster::Cluster* find_cluster(const std::string& service) const {
    for (const auto& c : clusters) {
      if (c->name() == service) return c.get();
    }
    return nullptr;
  }
  std::vector<std::unique_ptr<ContextSlot>> slots;
  std::unique_ptr<StatsRegistry> stats;
  unsigned workers = 1;
};

}  // namespace ringside::proxy
