// Endpoint discovery: turns each service's --upstream sources (static HOST:PORT,
// dns:HOST:PORT, file:PATH) into the endpoint set its Cluster publishes to the workers.
//
// It runs on a thread of its own ("disc", started only when some source is dynamic), off
// the data path: getaddrinfo() through the system resolver (/etc/hosts, then the servers
// of /etc/resolv.conf, which glibc re-reads when the file changes) every --dns-refresh,
// and endpoint files watched like certificate files (FileWatcher: inotify on the
// directory plus a 1 s stat() check). A source whose refresh fails, or finds no address,
// keeps its last good endpoints; the failure is logged and counted (/clusters). After a
// change the thread also frees the sets and endpoints no worker can reach any more.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ringside/cluster.h"
#include "ringside/config.h"
#include "ringside/file_watcher.h"
#include "ringside/result.h"

namespace ringside::cluster {

// Knobs that tests shorten; the defaults are the product's.
struct DiscoveryTuning {
  std::chrono::milliseconds dns_refresh{5000};  // --dns-refresh
  std::chrono::milliseconds file_poll{1000};    // stat() fallback for endpoint files
  std::chrono::milliseconds debounce{100};      // quiet time after an inotify event
  std::chrono::milliseconds reclaim_interval{50};
};

// Every address `host` resolves to (A and AAAA, through getaddrinfo), with `port`,
// sorted and without duplicates. Blocking. On failure returns false and detail says why;
// no address at all is a failure too.
bool resolve_all(const std::string& host, uint16_t port, std::vector<SocketAddress>* out,
                 std::string* detail);

class Discovery {
 public:
  struct Service {
    Cluster* cluster;
    ServiceConfig config;
  };
  Discovery(std::vector<Service> services, DiscoveryTuning tuning);
  // Stops the thread.
  ~Discovery();
  Discovery(const Discovery&) = delete;
  Discovery& operator=(const Discovery&) = delete;

  // Start-up, on the calling thread: resolves and reads every source once and publishes
  // each cluster's first set. A dns: name that does not resolve yet is logged, and the
  // thread keeps trying; its cluster starts without those endpoints.
  void initialize();
  // True when some source is dns: or file: (only then is there a thread to run).
  bool dynamic() const;
  // Starts and stops the "disc" thread (after initialize()).
  Result<void> start(std::string* detail);
  void stop();

  // Without the thread (tests): refresh every dynamic source now and publish what
  // changed; and one reclamation pass (returns the objects freed).
  void refresh_now();
  size_t collect_now();

 private:
  struct Source {
    DynamicEndpoints config;
    std::vector<SocketAddress> last_good;
    SourceStatus status;
  };
  struct Tracked {
    Cluster* cluster;
    std::vector<SourceStatus> statics;  // one per static endpoint
    std::vector<DiscoveredEndpoint> static_endpoints;
    std::vector<Source> sources;  // dns: and file:, in flag order
  };
  void refresh(Source& source);
  void publish(Tracked& tracked);
  void run();
  void wake();
  size_t pending() const;

  std::vector<Tracked> tracked_;
  const DiscoveryTuning tuning_;
  FileWatcher watcher_{"endpoint files", tuning_.file_poll, tuning_.debounce};
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

}  // namespace ringside::cluster
