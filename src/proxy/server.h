// The ringside process: turns a Config into running workers, the admin server and the
// control loop (signals, drain), and back down again.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "proxy/runtime.h"
#include "proxy/worker.h"
#include "ringside/config.h"
#include "ringside/discovery.h"
#include "ringside/health.h"
#include "ringside/rotation.h"

namespace ringside {
class AdminServer;
}

namespace ringside::proxy {

class Server {
 public:
  explicit Server(Config config);
  ~Server();

  // Loads certificates, builds TLS contexts, opens every listener on every worker and the
  // admin listener (an address in use by another process fails, naming it).
  // Nothing is started on failure; detail is one line naming the problem.
  Result<void> prepare(std::string* detail);
  // Starts the workers (then /ready says 200), waits for SIGTERM/SIGINT (or POST /drain),
  // drains, stops. Returns the process exit status.
  int run();

  // Number of workers prepare() decided on.
  unsigned workers() const { return runtime_.workers; }

 private:
  Result<void> load_tls(std::string* detail);
  void make_clusters();
  std::string local_app_name(const ListenerConfig& listener) const;
  // How reclaimers (certificates, endpoint sets) observe this server's workers.
  WorkerQuiescence quiescence();
  // Binds the admin address (nothing when --admin off); add_admin_routes() then gives it
  // its routes once everything they read exists.
  Result<void> open_admin(std::string* detail);
  void add_admin_routes();
  void drain_and_stop();
  std::string render_stats() const;
  std::string render_certs() const;
  std::string render_clusters() const;
  // GET /authz: every ingress listener's policy in force, and what each egress requires.
  std::string render_authz() const;

  Runtime runtime_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::unique_ptr<certs::RotationAgent> agent_;    // null when no listener uses TLS
  std::unique_ptr<cluster::Discovery> discovery_;  // endpoint sets of runtime_.clusters
  std::unique_ptr<health::Checker> health_;        // --health-check; null without any
  std::unique_ptr<AdminServer> admin_;
  std::atomic<bool> running_{false};  // the workers have been started: /ready may say 200
  std::atomic<bool> draining_{false};
  std::atomic<bool> drain_requested_{false};
  int64_t started_at_ = 0;
};

// The number of CPUs this process may run on (affinity mask, then cgroup cpu.max).
unsigned usable_cpus();

}  // namespace ringside::proxy
