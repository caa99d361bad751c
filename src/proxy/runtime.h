// What the workers share: read-only after start-up, except the TLS context slots, which
// the control thread republishes with one atomic pointer store (see DESIGN.md, RCU).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ringside/config.h"
#include "ringside/stats.h"
#include "ringside/tls.h"

namespace ringside::proxy {

// One published generation of TLS material for one listener.
struct TlsGeneration {
  std::shared_ptr<const tls::TlsContext> context;
  uint64_t id = 0;
};

// The RCU cell a worker reads at handshake start: an acquire load of one pointer. The
// control thread stores a new generation with release; a connection keeps the raw
// pointer it started with, and the old generation is only freed once no worker can
// still be using it (rotation agent).
class ContextSlot {
 public:
  const TlsGeneration* load() const { return current_.load(std::memory_order_acquire); }
  void publish(const TlsGeneration* generation) {
    current_.store(generation, std::memory_order_release);
  }

 private:
  std::atomic<const TlsGeneration*> current_{nullptr};
};

struct Cluster {
  std::string name;
  std::vector<UpstreamEndpoint> endpoints;
};

struct ListenerRuntime {
  ListenerConfig config;
  const Cluster* cluster = nullptr;  // egress: where traffic goes
  ContextSlot* tls = nullptr;        // server (ingress) or client (egress) contexts; null: plain
  std::string verify_name;           // egress: DNS SAN required of the upstream
  std::string sni;                   // egress: SNI sent
};

struct Runtime {
  Config config;
  std::vector<ListenerRuntime> listeners;
  std::vector<std::unique_ptr<Cluster>> clusters;
  std::vector<std::unique_ptr<ContextSlot>> slots;
  std::unique_ptr<StatsRegistry> stats;
  unsigned workers = 1;
};

}  // namespace ringside::proxy
