// Active health checks (App Mesh's HealthCheckPolicy): a "health" thread checks every
// endpoint of the services named by --health-check, and the local apps of the ingress
// listeners, every interval, with a timeout:
//   tcp   a connect;
//   http  GET PATH over HTTP/1.1, healthy on 2xx (the project's response parser);
//   grpc  grpc.health.v1.Health/Check over h2c (the project's HTTP/2 client codec),
//         healthy on grpc-status 0 and SERVING.
// An endpoint turns unhealthy after `unhealthy` failures in a row and healthy again after
// `healthy` successes in a row; an unhealthy endpoint is skipped by every worker's pick
// (Cluster::set_health), and /clusters says why. The local app is not taken out of its
// one-endpoint cluster (there is nowhere else to send); instead /ready answers 503 until
// it passed a check, and while it is unhealthy, so that ECS and a load balancer see it.
// http and grpc checks of a service reached over TLS go over TLS as its egress listener
// does (HealthCheckConfig::tls): the rotation agent's control client context, so the
// sidecar's current trust and certificate; tcp checks only connect (docs/operations.md,
// "Health checks").
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ringside/address.h"
#include "ringside/cluster.h"
#include "ringside/config.h"
#include "ringside/tls.h"

namespace ringside::health {

struct Outcome {
  bool ok = false;
  std::string detail;  // why not: "connect: Connection refused", "HTTP 503", "NOT_SERVING"
};

// One check of address, bounded by timeout; blocking (the health thread's). A probe with
// tls set needs tls_context (a client context; index 0 is used), else it fails.
Outcome check(const SocketAddress& address, const HealthCheckConfig& probe,
              std::chrono::milliseconds timeout, const tls::TlsContext* tls_context = nullptr);

class Checker {
 public:
  struct Target {
    cluster::Cluster* cluster = nullptr;  // a service whose endpoints are checked
    SocketAddress app;                    // or a local app (cluster null)
    HealthCheckConfig probe;
  };
  // Where TLS checks get their client context from, at each check (rotations apply).
  using ClientContext = std::function<std::shared_ptr<const tls::TlsContext>()>;
  Checker(std::vector<Target> targets, HealthCheckTiming timing, ClientContext tls = {});
  ~Checker();
  Checker(const Checker&) = delete;
  Checker& operator=(const Checker&) = delete;

  void start();
  void stop();
  // One round of checks now, on the calling thread (tests; the thread does this every
  // interval).
  void run_once();

  // Every local app checked has passed a check and is not unhealthy (true without any).
  bool app_ready() const { return app_ready_.load(std::memory_order_acquire); }
  // For /ready: why not ("local app 127.0.0.1:8080 unhealthy: HTTP 503").
  std::string app_status() const;

 private:
  struct State {
    unsigned successes = 0, failures = 0;
    bool healthy = true;
    bool passed_once = false;
    std::string detail;
  };
  void record(State& state, const Outcome& outcome);
  void run();

  const std::vector<Target> targets_;
  const HealthCheckTiming timing_;
  const ClientContext tls_;
  std::map<std::pair<size_t, uint32_t>, State> endpoints_;  // (target, endpoint id)
  std::vector<State> apps_;                                 // by target (local apps)
  std::atomic<bool> app_ready_{true};
  mutable std::mutex status_mutex_;
  std::string app_status_;

  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
};

}  // namespace ringside::health
