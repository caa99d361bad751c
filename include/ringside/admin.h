// The admin server: a small HTTP/1.1 server for operators and health checks (/ready,
// /stats, /certs, ...), and the Prometheus rendering of the stats.
//
// It runs on a thread of its own, named "admin", not on the control thread as
// DESIGN.md first drew it: a scrape or a slow client then never delays certificate
// rotation, and the control thread can block on DNS or a CA without stalling /ready.
// Handlers therefore run on the admin thread and must only read state that is safe to
// read from another thread (the stats counters are; see stats.h).
//
// One request per connection (every response says Connection: close). Connections are
// served concurrently from one poll() loop, so a slow or silent client delays nobody;
// each gets `read_timeout` to send its whole request, which is limited in size.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringside/address.h"
#include "ringside/result.h"
#include "ringside/stats.h"

namespace ringside {

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
};

// method: "GET", "POST", ...; path: the request target as sent, query string included
// ("/stats?format=json"); body: the request body (empty for most requests).
using AdminHandler = std::function<AdminResponse(const std::string& method, const std::string& path,
                                                 const std::string& body)>;

struct AdminServerOptions {
  // A client must send its whole request within this time, or is answered 408.
  std::chrono::milliseconds read_timeout{5000};
  // Request line plus headers, and body, each limited; beyond: 431 / 413.
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1024 * 1024;
  // Connections served at once; more wait in the kernel's accept queue.
  size_t max_connections = 64;
  // Until routes_complete() is called, every request is answered 503 "starting": a
  // probe that arrives while the routes are still being registered must not read a 404
  // (or a /stats without its series) as an answer.
  bool starting = false;
};

class AdminServer {
 public:
  // Binds and listens on `address` (port 0 picks a free port: see bound_address), and
  // starts the "admin" thread. On failure detail says why, in one line.
  static Result<std::unique_ptr<AdminServer>> start(const SocketAddress& address,
                                                    std::string* detail);
  static Result<std::unique_ptr<AdminServer>> start(const SocketAddress& address,
                                                    const AdminServerOptions& options,
                                                    std::string* detail);

  // Registers the handler of (method, path); path is matched exactly, without the query
  // string. Thread-safe and allowed at any time, also after start(): a request that
  // arrives before its route exists is answered 404. Registering the same (method, path)
  // again replaces the handler. A GET route also answers HEAD (without the body).
  // Unknown path: 404; known path, other method: 405 with an Allow header. A handler
  // that throws is answered 500.
  void route(std::string method, std::string path, AdminHandler handler);

  // Ends the "starting" state of AdminServerOptions::starting: from now on requests are
  // routed. Idempotent.
  void routes_complete();

  // The address actually bound (the real port when start() was given port 0).
  SocketAddress bound_address() const;

  // Stops accepting, closes open connections and joins the thread. Idempotent.
  void stop();
  ~AdminServer();

  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  class Impl;

 private:
  explicit AdminServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---- Prometheus text format (version 0.0.4) ----

// Builds Prometheus exposition text: one # HELP and # TYPE per metric family, then its
// samples. Label values are escaped. Other subsystems use it to append their metrics.
class PrometheusWriter {
 public:
  // Starts a family; type is "counter" or "gauge".
  void family(std::string_view name, std::string_view type, std::string_view help);
  // One sample of the current family (name may differ by a suffix, e.g. _bucket).
  void sample(std::string_view name,
              const std::vector<std::pair<std::string_view, std::string_view>>& labels,
              int64_t value);
  void sample(std::string_view name,
              const std::vector<std::pair<std::string_view, std::string_view>>& labels,
              uint64_t value);
  void sample(std::string_view name,
              const std::vector<std::pair<std::string_view, std::string_view>>& labels,
              double value);

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Appends more metrics (e.g. certificate stats) to the /stats text.
using PrometheusAppender = std::function<void(PrometheusWriter& writer)>;

// Renders every listener stat as ringside_listener_<name>{listener="<listener name>"}
// summed over workers, every worker stat as ringside_worker_<name>{worker="<i>"}, each
// family with its # HELP and # TYPE lines; then whatever `extra` appends, in order.
// Safe to call from the admin thread while workers update the counters.
std::string render_prometheus(const StatsRegistry& stats,
                              const std::vector<PrometheusAppender>& extra = {});

}  // namespace ringside
