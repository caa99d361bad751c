#include "proxy/server.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "ringside/admin.h"
#include "ringside/json.h"
#include "ringside/log.h"
#include "ringside/rotation.h"

namespace ringside::proxy {
namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

unsigned cgroup_cpu_limit() {
  // cgroup v2: "max 100000" or "200000 100000" (quota period).
  std::ifstream in("/sys/fs/cgroup/cpu.max");
  std::string quota;
  long period = 0;
  if (!(in >> quota >> period) || quota == "max" || period <= 0) return 0;
  long q = std::strtol(quota.c_str(), nullptr, 10);
  if (q <= 0) return 0;
  return static_cast<unsigned>((q + period - 1) / period);
}

}  // namespace

unsigned usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  unsigned count = 0;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    count = static_cast<unsigned>(CPU_COUNT(&set));
  }
  if (count == 0) count = static_cast<unsigned>(sysconf(_SC_NPROCESSORS_ONLN));
  unsigned limit = cgroup_cpu_limit();
  if (limit != 0 && limit < count) count = limit;
  return count == 0 ? 1 : count;
}

Server::Server(Config config) { runtime_.config = std::move(config); }

Server::~Server() {
  for (auto& worker : workers_) {
    if (worker) worker->request_stop();
  }
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  if (admin_) admin_->stop();
}

Result<void> Server::load_tls(std::string* detail) {
  // One slot per TLS listener; the rotation agent validates the certificate source,
  // builds and publishes generation 1 here (prepare fails if it cannot, except that a
  // remote CA that does not answer leaves the slots empty until it does), and later ones
  // from its own thread.
  std::vector<certs::TlsListener> tls_listeners;
  for (ListenerRuntime& listener : runtime_.listeners) {
    const ListenerConfig& lc = listener.config;
    if (lc.kind == ListenerKind::kEgress) {
      if (!lc.tls) continue;
      // san=none (spiffe-id= given): no DNS SAN is required, only the URI SAN.
      listener.verify_name = lc.san.empty() && lc.spiffe_id.empty() ? lc.service : lc.san;
      listener.verify_uri = lc.spiffe_id;
      listener.sni = lc.sni.empty() ? lc.service : lc.sni;
    }
    runtime_.slots.push_back(std::make_unique<ContextSlot>());
    listener.tls = runtime_.slots.back().get();
    tls_listeners.push_back(certs::TlsListener{lc.name, lc.kind, lc.client_cert, listener.tls,
                                               lc.alpn, listener.needs_identity});
  }
  if (tls_listeners.empty()) return {};
  agent_ = std::make_unique<certs::RotationAgent>(runtime_.config, std::move(tls_listeners),
                                                  runtime_.workers, quiescence());
  return agent_->initialize(detail);
}

WorkerQuiescence Server::quiescence() {
  WorkerQuiescence quiescence;
  quiescence.workers = runtime_.workers;
  quiescence.epoch = [this](unsigned i) -> uint64_t {
    return i < workers_.size() ? workers_[i]->quiescent_epoch() : 0;
  };
  quiescence.stopped = [this](unsigned i) {
    return i < workers_.size() && workers_[i]->finished();
  };
  return quiescence;
}

// Ingress HTTP: the local app is a one-endpoint cluster named after this task's service
// (its stats are the target's).
std::string Server::local_app_name(const ListenerConfig& lc) const {
  const Config& config = runtime_.config;
  return (config.service_name.empty() ? "local_app" : config.service_name) + "@" +
         lc.target.to_string();
}

// One endpoint set per service, shared by every listener (and route) that sends to it;
// the discovery publishes the first sets now and later ones from its thread.
void Server::make_clusters() {
  const Config& config = runtime_.config;
  std::vector<cluster::Discovery::Service> services;
  for (const auto& [name, service] : config.services) {
    runtime_.services.push_back(std::make_unique<cluster::Cluster>(
        name, runtime_.workers, cluster::OutlierPolicy::from(config.outlier), quiescence()));
    // Balancing: who sends to this service decides the default and what counts as load.
    bool http = false, h2 = false;
    for (const ListenerConfig& lc : config.listeners) {
      if (lc.kind != ListenerKind::kEgress || lc.service != name) continue;
      http = http || lc.protocol != Protocol::kTcp;
      h2 = h2 || lc.protocol == Protocol::kHttp2 || lc.protocol == Protocol::kGrpc;
    }
    for (const http::Route& route : config.http.routes) http = http || route.service == name;
    const LbPolicy lb = service.lb          ? *service.lb
                        : config.lb_default ? *config.lb_default
                        : h2                ? LbPolicy::kP2cEwma
                                            : LbPolicy::kRoundRobin;
    runtime_.services.back()->set_balancing(
        lb, http ? cluster::LbLoad::kRequests : cluster::LbLoad::kConnections);
    services.push_back({runtime_.services.back().get(), service});
  }
  // An HTTP ingress sends to its local app: a one-endpoint static set of its own.
  for (const ListenerConfig& lc : config.listeners) {
    if (lc.kind != ListenerKind::kIngress || lc.protocol == Protocol::kTcp) continue;
    ServiceConfig app;
    app.name = local_app_name(lc);
    if (runtime_.find_service(app.name) != nullptr) continue;
    app.endpoints.push_back(UpstreamEndpoint{lc.target.to_string(), lc.target});
    runtime_.services.push_back(std::make_unique<cluster::Cluster>(
        app.name, runtime_.workers, cluster::OutlierPolicy::from(config.outlier), quiescence()));
    services.push_back({runtime_.services.back().get(), std::move(app)});
  }
  cluster::DiscoveryTuning tuning;
  tuning.dns_refresh = config.dns_refresh;
  discovery_ = std::make_unique<cluster::Discovery>(std::move(services), tuning);
  discovery_->initialize();
  // Active health checks: a service's endpoints, or each ingress's local app.
  std::vector<health::Checker::Target> targets;
  for (const HealthCheckConfig& check : config.health_checks) {
    if (check.target != "app") {
      targets.push_back({runtime_.find_service(check.target), {}, check});
      continue;
    }
    for (const ListenerConfig& lc : config.listeners) {
      if (lc.kind != ListenerKind::kIngress) continue;
      bool seen = false;
      for (const auto& t : targets)
        seen = seen || (t.cluster == nullptr && t.app.to_string() == lc.target.to_string());
      if (!seen) targets.push_back({nullptr, lc.target, check});
    }
  }
  if (!targets.empty()) {
    // TLS checks use the agent's control client context (agent_ exists by the time the
    // health thread starts).
    health_ = std::make_unique<health::Checker>(std::move(targets), config.health_timing,
                                                [this]() -> std::shared_ptr<const tls::TlsContext> {
                                                  return agent_ ? agent_->control_client_context()
                                                                : nullptr;
                                                });
  }
}

Result<void> Server::prepare(std::string* detail) {
  Config& config = runtime_.config;
  tls::global_init();
  runtime_.workers = config.threads != 0 ? config.threads : usable_cpus();

  make_clusters();
  std::vector<std::string> names;
  std::vector<std::string> http_listeners;
  std::vector<std::string> http_services;
  // HTTP listeners share one cluster per service (their pools and service stats are
  // keyed by it); a TCP egress listener gets a cluster of its own, as before.
  auto http_cluster = [&](const std::string& name) -> Cluster* {
    for (auto& cluster : runtime_.clusters) {
      if (cluster->name == name && cluster->http_service >= 0) return cluster.get();
    }
    auto cluster = std::make_unique<Cluster>();
    cluster->name = name;
    cluster->endpoints = runtime_.find_service(name);
    cluster->index = static_cast<uint32_t>(runtime_.clusters.size());
    cluster->http_service = static_cast<int32_t>(http_services.size());
    http_services.push_back(name);
    runtime_.clusters.push_back(std::move(cluster));
    return runtime_.clusters.back().get();
  };
  for (const ListenerConfig& lc : config.listeners) {
    ListenerRuntime listener;
    listener.config = lc;
    const bool http = lc.protocol != Protocol::kTcp;  // http, http2, grpc
    if (lc.kind == ListenerKind::kIngress && lc.client_cert != tls::ClientCertMode::kNone) {
      listener.xfcc = http && config.http.headers.client_cert;
      listener.needs_identity = lc.authz.active() || listener.xfcc;
    }
    if (http) {
      listener.http_index = static_cast<int32_t>(http_listeners.size());
      http_listeners.push_back(lc.name);
      // How its upstream connections may speak HTTP/2: h2c to an app that speaks it
      // (protocol=http2|grpc), or whatever the remote sidecar picks with ALPN.
      const bool app_h2 = lc.protocol == Protocol::kHttp2 || lc.protocol == Protocol::kGrpc;
      const bool tls_out = lc.kind == ListenerKind::kEgress && lc.tls;
      if (tls_out) {
        const bool offers_h2 = std::find(lc.alpn.begin(), lc.alpn.end(), "h2") != lc.alpn.end();
        listener.upstream_h2 =
            offers_h2 ? ListenerRuntime::UpstreamH2::kAlpn : ListenerRuntime::UpstreamH2::kNever;
      } else if (app_h2 && lc.h2) {
        listener.upstream_h2 = ListenerRuntime::UpstreamH2::kPrior;
      }
    }
    if (lc.kind == ListenerKind::kEgress) {
      if (runtime_.find_service(lc.service) == nullptr) {
        *detail = lc.name + ": service '" + lc.service + "' has no --upstream";
        return make_error(ErrorKind::kConfig, Side::kInternal, "config");
      }
      if (http) {
        listener.cluster = http_cluster(lc.service);
      } else {
        auto cluster = std::make_unique<Cluster>();
        cluster->name = lc.service;
        cluster->endpoints = runtime_.find_service(lc.service);
        cluster->index = static_cast<uint32_t>(runtime_.clusters.size());
        listener.cluster = cluster.get();
        runtime_.clusters.push_back(std::move(cluster));
      }
    } else if (http) {
      listener.cluster = http_cluster(local_app_name(lc));
    }
    runtime_.listeners.push_back(std::move(listener));
    names.push_back(lc.name);
  }
  for (const http::Route& route : config.http.routes) {
    if (runtime_.find_service(route.service) == nullptr) {
      *detail = "--route " + route.host + route.path_prefix + ": service '" + route.service +
                "' has no --upstream";
      return make_error(ErrorKind::kConfig, Side::kInternal, "config");
    }
    http_cluster(route.service);
  }
  if (!http_listeners.empty()) {
    HttpRuntime& http = runtime_.http;
    http.routes = http::RouteTable(config.http.routes);
    // The table keeps its own copies of the routes: map each of them to its cluster.
    for (size_t i = 0; i < http.routes.size(); ++i) {
      const http::Route& route = http.routes.at(i);
      for (auto& cluster : runtime_.clusters) {
        if (cluster->name == route.service && cluster->http_service >= 0) {
          http.route_clusters.emplace_back(&route, cluster.get());
          break;
        }
      }
    }
    http.grpc_stats = std::make_unique<grpc::GrpcStatsRegistry>(runtime_.workers, http_services);
    http.stats = std::make_unique<http::HttpStatsRegistry>(
        runtime_.workers, std::move(http_listeners), std::move(http_services));
    if (!config.http.access_log.empty()) {
      auto writer = http::AccessLogWriter::open(config.http.access_log, runtime_.workers,
                                                http::AccessLogWriter::Options{}, detail);
      if (!writer.ok()) return writer.error();
      http.access_log = std::move(*writer);
    }
  }
  runtime_.stats = std::make_unique<StatsRegistry>(runtime_.workers, std::move(names));
  runtime_.authz.rules.resize(runtime_.workers);
  for (auto& per_worker : runtime_.authz.rules) {
    per_worker.resize(runtime_.listeners.size());
    for (size_t l = 0; l < runtime_.listeners.size(); ++l) {
      per_worker[l] =
          std::vector<AuthzRuleCounters>(runtime_.listeners[l].config.authz.rules.size());
    }
  }

  RingOptions ring_options;
  ring_options.buffer_count = config.buffer_count;
  ring_options.buffer_size = config.buffer_size;
  {
    // Probe once here so a kernel without io_uring fails before anything starts; each
    // worker then makes its own ring on its own thread.
    auto probe = make_io_uring(ring_options);
    if (!probe.ok()) {
      *detail = "io_uring: " + std::string(probe.error().what) + ": " +
                std::strerror(probe.error().sys_errno);
      return probe.error();
    }
  }
  for (unsigned i = 0; i < runtime_.workers; ++i) {
    auto worker = std::make_unique<Worker>(i, runtime_, ring_options);
    auto opened = worker->open_listeners(detail);
    if (!opened.ok()) return opened;
    workers_.push_back(std::move(worker));
  }
  auto admin = open_admin(detail);
  if (!admin.ok()) return admin;
  // After the binds: an address in use is reported before the certificate's first
  // generation is logged as published, and the failure stays the one line on stderr.
  auto loaded = load_tls(detail);
  if (!loaded.ok()) return loaded;
  add_admin_routes();
  return {};
}

// Bound in prepare, so that an admin address in use stops the start (exit 2) like a
// listener's would: a sidecar without /ready, or with another sidecar answering it, is
// worse than one that does not start. /ready says 503 until run() has started the workers.
Result<void> Server::open_admin(std::string* detail) {
  if (!runtime_.config.admin) return {};
  const std::string address = runtime_.config.admin->to_string();
  AdminServerOptions options;
  options.starting = true;  // 503 "starting" until add_admin_routes has run
  auto admin = AdminServer::start(*runtime_.config.admin, options, detail);
  if (!admin.ok()) {
    const int err = admin.error().sys_errno;
    *detail = "--admin " + address + ": " +
              (err == EADDRINUSE ? std::string("the address is already in use by another process")
                                 : *detail) +
              " (give another --admin address, or --admin off)";
    return admin.error();
  }
  admin_ = std::move(*admin);
  return {};
}

// Once agent_ and the rest exist: until then the admin thread answers 503 "starting".
void Server::add_admin_routes() {
  if (!admin_) return;
  admin_->route("GET", "/ready",
                [this](const std::string&, const std::string&, const std::string&) {
                  if (draining_.load(std::memory_order_acquire))
                    return AdminResponse{503, "text/plain", "draining\n"};
                  if (!running_.load(std::memory_order_acquire))
                    return AdminResponse{503, "text/plain", "starting\n"};
                  if (agent_ && !agent_->published())
                    return AdminResponse{503, "text/plain",
                                         "waiting for the first certificate from the CA\n"};
                  if (health_ && !health_->app_ready())
                    return AdminResponse{503, "text/plain", health_->app_status() + "\n"};
                  return AdminResponse{200, "text/plain", "ready\n"};
                });
  admin_->route("GET", "/stats",
                [this](const std::string&, const std::string&, const std::string&) {
                  return AdminResponse{200, "text/plain; version=0.0.4", render_stats()};
                });
  admin_->route("GET", "/certs",
                [this](const std::string&, const std::string&, const std::string&) {
                  return AdminResponse{200, "application/json", render_certs()};
                });
  admin_->route("GET", "/authz",
                [this](const std::string&, const std::string&, const std::string&) {
                  return AdminResponse{200, "application/json", render_authz()};
                });
  admin_->route("GET", "/clusters",
                [this](const std::string&, const std::string&, const std::string&) {
                  return AdminResponse{200, "application/json", render_clusters()};
                });
  admin_->route("POST", "/rotate",
                [this](const std::string&, const std::string&, const std::string&) {
                  if (!agent_)
                    return AdminResponse{404, "text/plain", "no TLS listener: nothing to rotate\n"};
                  agent_->request_rotation();
                  return AdminResponse{202, "text/plain", "rotation requested\n"};
                });
  admin_->route("POST", "/drain",
                [this](const std::string&, const std::string&, const std::string&) {
                  // /ready says 503 from this answer on, not from the control loop's next
                  // turn, which does the draining.
                  draining_.store(true, std::memory_order_release);
                  drain_requested_.store(true, std::memory_order_release);
                  return AdminResponse{202, "text/plain", "draining\n"};
                });
  admin_->routes_complete();
}

std::string Server::render_stats() const {
  std::vector<PrometheusAppender> extra;
  if (runtime_.http.stats) {
    const http::HttpStatsRegistry* http = runtime_.http.stats.get();
    extra.emplace_back(
        [http](PrometheusWriter& writer) { http::render_http_stats(*http, writer); });
    const grpc::GrpcStatsRegistry* grpc = runtime_.http.grpc_stats.get();
    extra.emplace_back(
        [grpc](PrometheusWriter& writer) { grpc::render_grpc_stats(*grpc, writer); });
  }
  bool any_rule = false;
  for (const ListenerRuntime& listener : runtime_.listeners) {
    any_rule = any_rule || !listener.config.authz.rules.empty();
  }
  if (any_rule) {
    extra.emplace_back([this](PrometheusWriter& writer) {
      const char* name = "ringside_authz_rule_requests_total";
      writer.family(name, "counter",
                    "Requests an --authz-rule matched, by decision (allowed, denied, would_deny: "
                    "denied in authz=audit and let through); rule is its index on the listener "
                    "(GET /authz)");
      for (size_t l = 0; l < runtime_.listeners.size(); ++l) {
        const ListenerConfig& lc = runtime_.listeners[l].config;
        for (size_t r = 0; r < lc.authz.rules.size(); ++r) {
          uint64_t allowed = 0, denied = 0, would_deny = 0;
          for (const auto& per_worker : runtime_.authz.rules) {
            allowed += per_worker[l][r].allowed.get();
            denied += per_worker[l][r].denied.get();
            would_deny += per_worker[l][r].would_deny.get();
          }
          const std::string rule = std::to_string(r);
          writer.sample(name, {{"listener", lc.name}, {"rule", rule}, {"decision", "allowed"}},
                        allowed);
          writer.sample(name, {{"listener", lc.name}, {"rule", rule}, {"decision", "denied"}},
                        denied);
          writer.sample(name, {{"listener", lc.name}, {"rule", rule}, {"decision", "would_deny"}},
                        would_deny);
        }
      }
    });
  }
  if (!runtime_.services.empty()) {
    extra.emplace_back([this](PrometheusWriter& writer) {
      const uint64_t now_ms = monotonic_ms();
      std::vector<cluster::Cluster::Health> health;
      for (const auto& service : runtime_.services) health.push_back(service->health(now_ms));
      writer.family("ringside_cluster_endpoints", "gauge",
                    "Endpoints of the service's current set (discovery)");
      for (size_t i = 0; i < health.size(); ++i)
        writer.sample("ringside_cluster_endpoints", {{"service", runtime_.services[i]->name()}},
                      health[i].endpoints);
      writer.family("ringside_cluster_endpoints_ejected", "gauge",
                    "Endpoints that at least one worker has ejected now (outlier detection)");
      for (size_t i = 0; i < health.size(); ++i)
        writer.sample("ringside_cluster_endpoints_ejected",
                      {{"service", runtime_.services[i]->name()}}, health[i].ejected);
      writer.family("ringside_cluster_endpoints_unhealthy", "gauge",
                    "Endpoints failing their active health checks now (--health-check)");
      for (size_t i = 0; i < health.size(); ++i)
        writer.sample("ringside_cluster_endpoints_unhealthy",
                      {{"service", runtime_.services[i]->name()}}, health[i].unhealthy);
    });
  }
  std::string text = render_prometheus(*runtime_.stats, extra);
  text += "# HELP ringside_workers Worker threads.\n# TYPE ringside_workers gauge\n";
  text += "ringside_workers " + std::to_string(runtime_.workers) + "\n";
  text += "# HELP ringside_draining 1 while draining.\n# TYPE ringside_draining gauge\n";
  text += std::string("ringside_draining ") + (draining_.load() ? "1" : "0") + "\n";
  text +=
      "# HELP ringside_uptime_seconds Seconds since start.\n# TYPE ringside_uptime_seconds gauge\n";
  text += "ringside_uptime_seconds " + std::to_string(unix_now() - started_at_) + "\n";
  if (agent_) text += agent_->render_prometheus();
  return text;
}

std::string Server::render_certs() const {
  // The agent's own snapshot: the admin thread never dereferences a published generation
  // (it is not a worker, so reclamation does not wait for it).
  return agent_ ? agent_->render_json() : "{\"generation\":0,\"listeners\":[]}\n";
}

std::string Server::render_authz() const {
  // Read-only after start-up: the admin thread may read the listeners' policies.
  std::string out = "{\"listeners\":[";
  bool first = true;
  for (const ListenerRuntime& listener : runtime_.listeners) {
    const ListenerConfig& lc = listener.config;
    if (lc.kind != ListenerKind::kIngress) continue;
    out += first ? "" : ",";
    first = false;
    std::string policy = authz::render_json(lc.name, lc.authz);
    // Also what the listener does with identities: the header and the client-cert mode.
    policy.pop_back();
    policy += ",\"client_cert\":\"";
    policy += lc.client_cert == tls::ClientCertMode::kRequire    ? "require"
              : lc.client_cert == tls::ClientCertMode::kOptional ? "optional"
                                                                 : "none";
    policy += "\",\"forwarded_client_cert\":";
    policy += listener.xfcc ? "true}" : "false}";
    out += policy;
  }
  out += "],\"egress\":[";
  first = true;
  for (const ListenerRuntime& listener : runtime_.listeners) {
    const ListenerConfig& lc = listener.config;
    if (lc.kind != ListenerKind::kEgress || !lc.tls) continue;
    out += first ? "{\"listener\":\"" : ",{\"listener\":\"";
    first = false;
    append_json_escaped(out, lc.name);
    auto string_or_null = [&out](const std::string& value) {
      if (value.empty()) {
        out += "null";
        return;
      }
      out += '"';
      append_json_escaped(out, value);
      out += '"';
    };
    out += "\",\"dns_san\":";
    string_or_null(listener.verify_name);
    out += ",\"spiffe_id\":";
    string_or_null(listener.verify_uri);
    out += '}';
  }
  out += "]}\n";
  return out;
}

std::string Server::render_clusters() const {
  const uint64_t now_ms = monotonic_ms();
  std::string out = "{\"clusters\":[";
  for (size_t i = 0; i < runtime_.services.size(); ++i) {
    out += (i ? "," : "") + runtime_.services[i]->render_json(now_ms);
  }
  out += "]}\n";
  return out;
}

int Server::run() {
  started_at_ = unix_now();
  // Signals are taken synchronously by this (control) thread; every other thread
  // inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  const Config& config = runtime_.config;
  std::vector<int> cpus = config.cpus;
  if (cpus.empty() && config.pin_threads) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
      for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
      }
    }
  }
  for (size_t i = 0; i < workers_.size(); ++i) {
    Worker* worker = workers_[i].get();
    threads_.emplace_back([worker] { worker->run(); });
    if (!cpus.empty()) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpus[i % cpus.size()], &set);
      if (pthread_setaffinity_np(threads_.back().native_handle(), sizeof(set), &set) != 0) {
        RS_WARN("worker %zu: cannot pin to CPU %d", i, cpus[i % cpus.size()]);
      }
    }
  }
  if (agent_) {
    std::string detail;
    if (!agent_->start(&detail).ok()) RS_ERROR("rotation agent: %s (no rotation)", detail.c_str());
  }
  if (discovery_) {
    std::string detail;
    if (!discovery_->start(&detail).ok()) {
      RS_ERROR("endpoint discovery: %s (endpoints stay as they are)", detail.c_str());
    }
  }
  if (health_) health_->start();
  running_.store(true, std::memory_order_release);
  if (admin_) RS_INFO("admin listening on %s", admin_->bound_address().to_string().c_str());
  std::string listeners;
  for (const ListenerRuntime& listener : runtime_.listeners) {
    listeners += " " + listener.config.name;
  }
  RS_INFO("ringside started: %zu workers, listeners:%s", workers_.size(), listeners.c_str());

  while (true) {
    timespec timeout{0, 200 * 1000 * 1000};
    int sig = sigtimedwait(&signals, nullptr, &timeout);
    if (sig == SIGTERM || sig == SIGINT) {
      draining_.store(true, std::memory_order_release);  // /ready: 503 from here on
      RS_INFO("received %s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      break;
    }
    if (sig == SIGHUP) {
      // As POST /rotate: reload the files, or renew from the local issuer or remote CA.
      RS_INFO("received SIGHUP: rotating certificates now, reopening the access log");
      if (agent_) agent_->request_rotation();
      if (runtime_.http.access_log) runtime_.http.access_log->request_reopen();
      continue;
    }
    if (drain_requested_.load(std::memory_order_acquire)) {
      RS_INFO("drain requested through the admin endpoint");
      break;
    }
    bool all_finished = true;
    for (auto& worker : workers_) all_finished = all_finished && worker->finished();
    if (all_finished) {
      RS_ERROR("every worker stopped; exiting");
      return 1;
    }
  }
  drain_and_stop();
  return 0;
}

void Server::drain_and_stop() {
  draining_.store(true, std::memory_order_release);
  if (agent_) agent_->stop();          // no rotation while draining; generations are freed with it
  if (discovery_) discovery_->stop();  // endpoint sets stay as they are while draining
  if (health_) health_->stop();        // and so do the health verdicts
  for (auto& worker : workers_) worker->request_drain();
  auto deadline = std::chrono::steady_clock::now() + runtime_.config.drain_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    bool done = true;
    for (auto& worker : workers_) done = done && worker->finished();
    if (done) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  int64_t left = 0;
  for (auto& worker : workers_) {
    if (!worker->finished()) left += worker->open_connections();
  }
  if (left > 0) RS_INFO("drain timeout: closing %lld connections", static_cast<long long>(left));
  for (auto& worker : workers_) worker->request_stop();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
  if (runtime_.http.access_log) runtime_.http.access_log->stop();  // writes out every line
  if (admin_) admin_->stop();
  RS_INFO("stopped");
}

}  // namespace ringside::proxy
