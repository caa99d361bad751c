// The configuration of a ringside process: what the command line and --config say,
// parsed and validated before anything starts.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringside/address.h"
#include "ringside/authz.h"
#include "ringside/http2_config.h"
#include "ringside/http_config.h"
#include "ringside/tls.h"

namespace ringside {

// What the application behind a listener speaks, named like ECS's appProtocol: tcp (bytes,
// relayed at L4), http (HTTP/1.1), http2 (h2c to the app), grpc (h2c; gRPC's own semantics
// are issue 12). Clients of the three HTTP protocols may speak HTTP/1.1 or HTTP/2.
enum class Protocol : uint8_t { kTcp, kHttp, kHttp2, kGrpc };

std::string_view to_string(Protocol protocol);
enum class ListenerKind : uint8_t { kIngress, kEgress };

using Duration = std::chrono::milliseconds;

// "250ms", "5s", "2m", "1h", "7d"; a bare number means seconds. "0" is zero.
Result<Duration> parse_duration(std::string_view text, std::string* detail);
std::string format_duration(Duration d);
// "16k", "1m", "4096": bytes.
Result<uint64_t> parse_size(std::string_view text, std::string* detail);

struct ListenerConfig {
  ListenerKind kind = ListenerKind::kIngress;
  std::string name;  // "ingress_127.0.0.1:15443", used in stats and logs
  SocketAddress listen;
  Protocol protocol = Protocol::kTcp;
  // ingress: where the local app listens; client-cert policy.
  SocketAddress target;
  tls::ClientCertMode client_cert = tls::ClientCertMode::kNone;
  // egress: the service whose endpoints receive the traffic, and how to verify them.
  std::string service;
  std::string san;  // the DNS SAN the upstream must present; default: service
  std::string sni;  // SNI sent; default: service
  bool tls = true;  // egress only: tls=off relays plaintext (for tests and migration)
  // ingress only: tls=permissive also takes plaintext clients on the port (App Mesh's
  // PERMISSIVE mode, for moving a service onto TLS): a first byte that is not a TLS
  // handshake record makes the connection plaintext.
  bool permissive = false;
  // egress, HTTP protocols: h2=off keeps the remote sidecar on HTTP/1.1 (ALPN http/1.1).
  bool h2 = true;
  // ALPN ids, most preferred first: what an ingress listener accepts, what an egress
  // listener offers to the remote sidecar. protocol=tcp: the alpn= key (default none);
  // the HTTP protocols: "h2", "http/1.1" (an egress with h2=off: "http/1.1").
  std::vector<std::string> alpn;
  // ingress: who may connect (allow=, needs client-cert=require), the --authz-rule rules of
  // an HTTP listener, and whether they are enforced or audited (authz=).
  authz::ListenerPolicy authz;
  // egress: the URI SAN (a SPIFFE ID) the upstream must present (spiffe-id=), besides the
  // DNS SAN; san=none drops the DNS SAN requirement (then spiffe-id is required).
  std::string spiffe_id;
};

struct UpstreamEndpoint {
  std::string text;  // as given: "10.0.0.7:15443"
  SocketAddress address;
};

// Where a service's endpoints come from besides static HOST:PORT flags.
enum class EndpointSourceKind : uint8_t { kStatic, kDns, kFile };

// --upstream SERVICE=dns:HOST:PORT (every address HOST resolves to, re-resolved every
// --dns-refresh) or SERVICE=file:PATH (HOST:PORT lines, watched).
struct DynamicEndpoints {
  EndpointSourceKind kind = EndpointSourceKind::kDns;
  std::string text;   // as given: "dns:app.internal:15443", "file:/run/endpoints"
  std::string host;   // dns: the name to resolve
  uint16_t port = 0;  // dns: the port of every address
  std::string path;   // file: the file
};

// How requests (or, for TCP, connections) choose among a service's endpoints
// (--lb-policy; ringside::cluster::Cluster::pick says how each works).
enum class LbPolicy : uint8_t { kRoundRobin, kLeastRequest, kP2cEwma };

struct ServiceConfig {
  std::string name;
  std::optional<LbPolicy> lb;               // --lb-policy SERVICE=POLICY
  std::vector<UpstreamEndpoint> endpoints;  // static HOST:PORT
  std::vector<DynamicEndpoints> dynamic;    // dns: and file: sources
};

// Passive outlier detection, per cluster endpoint (see docs/service-connect.md).
struct OutlierConfig {
  unsigned consecutive_connect_failures = 5;  // 0: never eject for connect failures
  unsigned consecutive_5xx = 5;               // 0: never eject for 5xx responses
  Duration ejection_time = std::chrono::seconds(30);
  unsigned max_ejection_percent = 50;  // of a cluster's endpoints, ejected at once
};

// --health-check TARGET=KIND[:ARG]: TARGET a service of --upstream, or "app" (the local
// app of every ingress listener); ARG the path (http, default "/") or the service name
// asked about (grpc, default "": the server as a whole).
struct HealthCheckConfig {
  enum class Kind : uint8_t { kTcp, kHttp, kGrpc };
  std::string target;
  Kind kind = Kind::kTcp;
  std::string arg;
  // http and grpc checks of a service its egress listeners reach over TLS go over TLS
  // too, as those listeners do: this SNI, this DNS SAN required, the sidecar's trust and
  // certificate (ALPN http/1.1 or h2).
  bool tls = false;
  std::string sni, verify_name;
};

struct HealthCheckTiming {
  Duration interval = std::chrono::seconds(5);
  Duration timeout = std::chrono::seconds(2);
  unsigned healthy_threshold = 2;    // successes in a row to turn healthy
  unsigned unhealthy_threshold = 2;  // failures in a row to turn unhealthy
};

struct Config {
  std::string service_name;  // this task's own service (the SAN of its certificate)
  std::vector<ListenerConfig> listeners;
  std::map<std::string, ServiceConfig> services;   // by service name
  Duration dns_refresh = std::chrono::seconds(5);  // re-resolution of dns: endpoints
  OutlierConfig outlier;
  // --lb-policy POLICY: every service without its own; unset: p2c-ewma for services an
  // http2 or grpc listener sends to, round-robin for the others.
  std::optional<LbPolicy> lb_default;
  std::vector<HealthCheckConfig> health_checks;
  HealthCheckTiming health_timing;

  // Certificate sources (see DESIGN.md). Files:
  std::string cert_path, key_path, trust_path;
  // Local issuer:
  std::string ca_cert_path, ca_key_path, cert_dir;
  tls::KeyType key_type = tls::KeyType::kEcdsaP256;
  Duration cert_lifetime = std::chrono::hours(24 * 7);
  Duration cert_renew_after = std::chrono::hours(24 * 5);
  // Renewal at a uniformly random point in the last this-many percent of
  // cert_renew_after, so that a fleet started together does not renew together.
  unsigned cert_renew_jitter_percent = 20;
  // Remote CA: https needs ca_trust_path; a client certificate and cfssl's auth key
  // (authsign) are optional.
  std::string ca_url;
  std::string ca_trust_path, ca_client_cert_path, ca_client_key_path, ca_auth_key_path;
  // ACME (RFC 8555): the directory URL (https, verified with ca_trust_path); http-01 is
  // answered on acme_http_address ("ADDRESS:PORT") when set, else tls-alpn-01 on the
  // ingress listeners.
  std::string acme_directory, acme_http_address;

  std::optional<SocketAddress> admin;  // nullopt: --admin off
  unsigned threads = 0;                // 0: one per CPU the process may run on
  bool pin_threads = false;            // pin worker i to the i-th allowed CPU
  std::vector<int> cpus;               // --cpus 0,1: the CPUs to pin to (implies pinning)

  Duration connect_timeout = std::chrono::seconds(5);
  Duration handshake_timeout = std::chrono::seconds(10);
  Duration tcp_idle_timeout = std::chrono::hours(1);
  Duration drain_timeout = std::chrono::seconds(20);

  uint64_t max_pending_bytes = 256 * 1024;  // per direction, before back-pressure
  unsigned buffer_count = 1024;             // provided buffers per worker
  unsigned buffer_size = 16 * 1024 + 512;
  unsigned max_connections = 0;  // per worker; 0 = limited by descriptors only

  std::string log_level = "info";  // error|warn|info|debug
  bool tls13_only = false;
  // Local issuer: the URI SAN put into the issued certificate next to the DNS SAN
  // (--spiffe-id), e.g. spiffe://example.org/ns/sample-namespace/sa/app; empty: none.
  std::string spiffe_id;

  // Listeners with protocol=http: routes, retries, timeouts, added headers, access log.
  http::HttpConfig http;
  // HTTP/2 connections (--h2-* flags).
  http2::Settings http2;
};

// One endpoint per non-empty line: HOST:PORT or [V6]:PORT; '#' starts a comment. Host
// names are resolved (blocking). Used for --upstream SERVICE=file:PATH at start-up and
// on every change. On failure returns false and detail names the line and the problem;
// a file without any endpoint is a failure too.
bool parse_endpoint_file(std::string_view text, std::vector<SocketAddress>* endpoints,
                         std::string* detail);

// The /etc/hosts lines for the client aliases of config's egress listeners
// ("127.255.0.1 app.sample-namespace"), one line per address, what `ringside hosts` prints.
// The exact host names of --route targets share the line of the first HTTP egress
// listener (the app must resolve them to it too); a wildcard route host gets a comment.
std::string render_hosts(const Config& config);

// What parse_command_line decided.
struct ParseOutcome {
  // kRun: start the proxy; kExit: print message and exit with exit_code (also what
  // `ringside hosts` ends in, its lines as the message).
  enum class Action { kRun, kExit } action = Action::kRun;
  int exit_code = 0;    // for kExit: 0 after --help/--version, 2 after an error
  std::string message;  // printed by main: help text, or one error line
  Config config;
};

// Parses argv (and --config FILE, which takes the same keys; flags override it),
// validates everything that can be checked without starting (addresses parse, files
// exist and are readable, every egress service has an upstream, cert and key given
// together, ...). Never throws, never exits. `ringside hosts FLAGS...` parses and checks
// FLAGS the same way, then asks for render_hosts(config) to be printed.
ParseOutcome parse_command_line(int argc, const char* const* argv);

}  // namespace ringside
