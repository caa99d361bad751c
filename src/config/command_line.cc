// parse_command_line: flags and --config FILE through Boost.Program_options, then every
// check that can be made before anything starts. Boost throws; nothing escapes here.
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

// wolfSSL's options.h must come before any other wolfSSL header.
#include <wolfssl/options.h>
#include <wolfssl/version.h>

#include "certs/sources.h"
#include "config/ringside_version.h"
#include "ringside/config.h"
#include "ringside/http_route.h"
#include "ringside/tls.h"

namespace ringside {

namespace po = boost::program_options;

namespace {

// Everything as the user spelled it; converted and checked after Boost is done.
struct RawOptions {
  std::string service_name;
  std::vector<std::string> ingress, egress, upstream, lb_policy, health_check;
  std::string health_check_interval, health_check_timeout, health_check_healthy,
      health_check_unhealthy;
  std::string dns_refresh;
  std::string outlier_connect_failures, outlier_consecutive_5xx, outlier_ejection_time,
      outlier_max_ejection_percent;
  std::string cert, key, trust;
  std::string ca_cert, ca_key, cert_dir, key_type, cert_lifetime, cert_renew_after, ca_url;
  std::string cert_renew_jitter, ca_trust, ca_client_cert, ca_client_key, ca_auth_key;
  std::string acme_directory, acme_http_port;
  std::string admin;
  bool admin_allow_remote = false;
  std::string threads, cpus;
  bool pin_threads = false;
  std::string connect_timeout, handshake_timeout, idle_timeout, drain_timeout;
  std::string max_pending_bytes, buffers, buffer_size, max_connections;
  bool tls13_only = false;
  std::string log_level;
  std::string config_file;
  // HTTP (protocol=http listeners).
  std::vector<std::string> route, trusted_downstream, authz_rule;
  std::string retries, request_timeout, http_idle_timeout, request_header_timeout;
  std::string grpc_retry_on, grpc_per_try_timeout;
  bool no_request_id = false, no_forwarded_headers = false, no_server_header = false,
       no_upstream_service_time = false, no_forwarded_client_cert = false;
  std::string spiffe_id;
  std::string access_log, access_log_format;
  bool log_query = false;
  // HTTP/2 (protocol=http2|grpc listeners).
  std::string h2_max_concurrent_streams, h2_initial_stream_window, h2_initial_connection_window,
      h2_max_header_list, h2_max_headers;
};

constexpr unsigned kHelpWidth = 100;  // columns of --help
constexpr unsigned kMaxThreads = 1024;
// io_uring's provided-buffer rings hold at most 32768 entries.
constexpr unsigned kMaxBuffers = 32768;
constexpr uint64_t kMinBufferSize = 1024;
constexpr uint64_t kMaxBufferSize = 1 << 20;
constexpr unsigned kMaxRetries = 10;

// Thrown only inside this file, caught in parse_command_line: the first problem found.
struct ConfigProblem {
  std::string message;
};

[[noreturn]] void fail(const std::string& flag, const std::string& value,
                       const std::string& problem) {
  throw ConfigProblem{"ringside: --" + flag + " '" + value + "': " + problem};
}

[[noreturn]] void fail(const std::string& text) { throw ConfigProblem{"ringside: " + text}; }

// Adds every option that both the command line and the config file take.
void describe_options(RawOptions& raw, po::options_description& all) {
  po::options_description listeners("Service and listeners (--ingress and --egress repeat)",
                                    kHelpWidth, kHelpWidth / 2);
  listeners.add_options()  //
      ("service-name", po::value(&raw.service_name)->value_name("NAME"),
       "this task's service name: the DNS SAN of its certificate")  //
      ("ingress", po::value(&raw.ingress)->value_name("LISTEN=TARGET[,KEY=VAL]"),
       "TLS listener forwarding plaintext to the local app at TARGET; keys: "
       "protocol=tcp|http|http2|grpc (tcp; what the app speaks: http is HTTP/1.1, http2 and "
       "grpc are h2c; clients may speak HTTP/2 or HTTP/1.1 to any of the three), "
       "client-cert=none|optional|require (none), alpn=ID[:ID...] (protocol=tcp: the ALPN ids "
       "the listener accepts, e.g. h2:http/1.1; the HTTP protocols accept h2 and http/1.1), "
       "tls=strict|permissive (strict; permissive: a client whose first byte is not a TLS "
       "handshake is served in plaintext on the same port, counted apart, for moving a "
       "service onto TLS), allow=ID[|ID...] (needs client-cert=require: only these client "
       "identities may connect; ID: a DNS SAN, *.DOMAIN, a SPIFFE ID spiffe://TD/PATH, a "
       "prefix spiffe://TD/PATH/* or *; see docs/authz.md), authz=enforce|audit (enforce; "
       "audit: what the allow-list and --authz-rule would deny is logged and counted, and "
       "passes)")  //
      ("authz-rule", po::value(&raw.authz_rule)->value_name("LISTEN,KEY=VAL..."),
       "a per-route rule of the HTTP ingress listening on LISTEN (repeatable; the first "
       "matching rule decides, a request matching none is allowed): keys host=NAME|*.DOMAIN, "
       "path=/PREFIX, method=M[|M...] (each optional: any) and allow=ID[|ID...] (required); a "
       "request from another identity gets 403 (gRPC: PERMISSION_DENIED); needs "
       "client-cert=require on LISTEN")  //
      ("egress", po::value(&raw.egress)->value_name("LISTEN=SERVICE[,KEY=VAL]"),
       "plaintext listener whose traffic goes over TLS to SERVICE's upstreams; keys: "
       "protocol=tcp|http|http2|grpc (tcp), san=NAME (SERVICE), sni=NAME (SERVICE), "
       "tls=on|off (on), spiffe-id=ID (the URI SAN the upstream must also present; with "
       "san=none instead of the DNS SAN), alpn=ID[:ID...] (protocol=tcp: the ALPN ids offered to "
       "SERVICE; "
       "the HTTP protocols offer h2 and http/1.1 and multiplex over h2 when SERVICE picks it), "
       "h2=on|off (on; off: HTTP/1.1 to SERVICE, one request per connection at a time)");

  po::options_description upstreams("Upstreams (--upstream repeats)", kHelpWidth, kHelpWidth / 2);
  upstreams.add_options()  //
      ("upstream", po::value(&raw.upstream)->value_name("SERVICE=ENDPOINT"),
       "an endpoint of SERVICE: HOST:PORT (a host name is resolved once, at start), "
       "dns:HOST:PORT (every address of HOST, re-resolved every --dns-refresh) or file:PATH "
       "(HOST:PORT lines, '#' comments; the file is watched)")  //
      ("lb-policy", po::value(&raw.lb_policy)->value_name("[SERVICE=]POLICY"),
       "how requests choose an endpoint of SERVICE (without SERVICE=: of every service not "
       "named): round-robin, least-request (two at random, the fewer outstanding requests) or "
       "p2c-ewma (two at random, the lower latency EWMA x outstanding, scaled by the load the "
       "latency was measured at); repeatable; default: "
       "p2c-ewma for services an http2 or grpc listener sends to, round-robin otherwise; TCP "
       "listeners count connections instead of requests")  //
      ("health-check", po::value(&raw.health_check)->value_name("TARGET=KIND[:ARG]"),
       "active health checks of every endpoint of service TARGET, or of the local app of "
       "every ingress (TARGET app): tcp (connect), http[:PATH] (GET PATH, default /, 2xx is "
       "healthy) or grpc[:SERVICE] (grpc.health.v1.Health/Check, SERVING is healthy); "
       "http and grpc checks of a service reached over TLS use TLS as its egress listener "
       "does (SNI, verified name, trust, certificate; ALPN http/1.1 or h2); an unhealthy "
       "endpoint gets no requests, an unhealthy local app turns /ready to 503; repeatable")  //
      ("health-check-interval",
       po::value(&raw.health_check_interval)->value_name("DURATION")->default_value("5s"),
       "time between two checks of an endpoint")  //
      ("health-check-timeout",
       po::value(&raw.health_check_timeout)->value_name("DURATION")->default_value("2s"),
       "a check without an answer within this fails (at most the interval)")  //
      ("health-check-healthy-threshold",
       po::value(&raw.health_check_healthy)->value_name("N")->default_value("2"),
       "successes in a row that make an unhealthy endpoint healthy again (1-10)")  //
      ("health-check-unhealthy-threshold",
       po::value(&raw.health_check_unhealthy)->value_name("N")->default_value("2"),
       "failures in a row that make an endpoint unhealthy (1-10)")  //
      ("dns-refresh", po::value(&raw.dns_refresh)->value_name("DURATION")->default_value("5s"),
       "how often dns: endpoints are resolved again (through the system resolver)")  //
      ("outlier-connect-failures",
       po::value(&raw.outlier_connect_failures)->value_name("N")->default_value("5"),
       "eject an endpoint after N consecutive connect or TLS handshake failures (0: never)")  //
      ("outlier-consecutive-5xx",
       po::value(&raw.outlier_consecutive_5xx)->value_name("N")->default_value("5"),
       "eject an endpoint after N consecutive 5xx responses (protocol=http; 0: never)")  //
      ("outlier-ejection-time",
       po::value(&raw.outlier_ejection_time)->value_name("DURATION")->default_value("30s"),
       "how long an ejected endpoint receives no new connection")  //
      ("outlier-max-ejection-percent",
       po::value(&raw.outlier_max_ejection_percent)->value_name("N")->default_value("50"),
       "never eject more than N% of a service's endpoints at once");

  po::options_description certificates("Certificates", kHelpWidth, kHelpWidth / 2);
  certificates.add_options()  //
      ("cert", po::value(&raw.cert)->value_name("FILE"),
       "certificate chain (PEM, leaf first), watched for changes; needs --key")        //
      ("key", po::value(&raw.key)->value_name("FILE"), "private key of --cert (PEM)")  //
      ("trust", po::value(&raw.trust)->value_name("FILE"),
       "CA bundle (PEM) that peer certificates must chain to")  //
      ("ca-cert", po::value(&raw.ca_cert)->value_name("FILE"),
       "local issuer: CA certificate that signs this task's certificates, optionally followed "
       "by its parents (a subordinate CA: issued certificates are served with that chain, "
       "less a self-signed root); needs --ca-key")                                          //
      ("ca-key", po::value(&raw.ca_key)->value_name("FILE"), "local issuer: the CA's key")  //
      ("cert-dir", po::value(&raw.cert_dir)->value_name("DIR"),
       "where issued certificates and keys are written")  //
      ("key-type", po::value(&raw.key_type)->value_name("TYPE")->default_value("ecdsa-p256"),
       "key of issued certificates: ecdsa-p256 or rsa-2048")  //
      ("cert-lifetime", po::value(&raw.cert_lifetime)->value_name("DURATION")->default_value("7d"),
       "validity of issued certificates")  //
      ("cert-renew-after",
       po::value(&raw.cert_renew_after)->value_name("DURATION")->default_value("5d"),
       "renew an issued certificate this long after it was issued")  //
      ("cert-renew-jitter",
       po::value(&raw.cert_renew_jitter)->value_name("PERCENT")->default_value("20"),
       "renew at a random point in the last PERCENT % of --cert-renew-after (0: exactly "
       "then), so that sidecars started together do not all ask the CA at once; failed "
       "attempts are retried with full-jitter exponential backoff")  //
      ("spiffe-id", po::value(&raw.spiffe_id)->value_name("ID"),
       "local issuer: also put this SPIFFE ID (spiffe://TRUST-DOMAIN/PATH) as a URI SAN into "
       "the issued certificate, next to the DNS SAN")  //
      ("ca-url", po::value(&raw.ca_url)->value_name("URL"),
       "remote CA (cfssl HTTP API) that signs this task's certificates: http://HOST:PORT or "
       "https://HOST:PORT (with --ca-trust), [/PATH][?profile=NAME]")  //
      ("ca-trust", po::value(&raw.ca_trust)->value_name("FILE"),
       "CA bundle (PEM) the https:// --ca-url server's certificate must chain to (its name "
       "must match the URL's host)")  //
      ("ca-client-cert", po::value(&raw.ca_client_cert)->value_name("FILE"),
       "client certificate (PEM) presented to the https:// --ca-url server; needs "
       "--ca-client-key")  //
      ("ca-client-key", po::value(&raw.ca_client_key)->value_name("FILE"),
       "private key of --ca-client-cert")  //
      ("ca-auth-key", po::value(&raw.ca_auth_key)->value_name("FILE"),
       "cfssl auth key (hex, as in cfssl's auth_keys; the file must not be readable by "
       "others): requests go to /api/v1/cfssl/authsign with an HMAC of each request")  //
      ("acme-directory", po::value(&raw.acme_directory)->value_name("URL"),
       "ACME (RFC 8555) CA: its directory, https://HOST:PORT/PATH, verified with --ca-trust; "
       "needs --cert-dir (the account key is kept there, 0600) and --service-name (the "
       "name ordered). Challenge: http-01 with --acme-http-port, else tls-alpn-01 on the "
       "ingress listeners")  //
      ("acme-http-port", po::value(&raw.acme_http_port)->value_name("[ADDRESS:]PORT"),
       "answer ACME http-01 challenges (/.well-known/acme-challenge/TOKEN) on this "
       "plaintext port (bare PORT: all addresses)");

  po::options_description timeouts("Timeouts (DURATION: 250ms, 5s, 2m, 1h, 7d; bare = seconds)",
                                   kHelpWidth, kHelpWidth / 2);
  timeouts.add_options()  //
      ("connect-timeout",
       po::value(&raw.connect_timeout)->value_name("DURATION")->default_value("5s"),
       "upstream TCP connect")  //
      ("handshake-timeout",
       po::value(&raw.handshake_timeout)->value_name("DURATION")->default_value("10s"),
       "TLS handshake, either side")  //
      ("idle-timeout", po::value(&raw.idle_timeout)->value_name("DURATION")->default_value("1h"),
       "close a TCP connection idle this long in both directions (0: never)")  //
      ("drain-timeout", po::value(&raw.drain_timeout)->value_name("DURATION")->default_value("20s"),
       "on shutdown or POST /drain, close what is still open after this long");

  po::options_description performance("Performance", kHelpWidth, kHelpWidth / 2);
  performance.add_options()  //
      ("threads", po::value(&raw.threads)->value_name("N")->default_value("0"),
       "worker threads (0: one per allowed CPU, or per --cpus entry)")  //
      ("cpus", po::value(&raw.cpus)->value_name("LIST"),
       "pin workers to these CPUs, e.g. 0,1 or 2-3 (implies --pin-threads)")  //
      ("pin-threads", po::bool_switch(&raw.pin_threads),
       "pin worker i to the i-th CPU the process may run on")  //
      ("max-pending-bytes",
       po::value(&raw.max_pending_bytes)->value_name("SIZE")->default_value("256k"),
       "bytes buffered per direction before reading from the sender pauses")  //
      ("buffers", po::value(&raw.buffers)->value_name("N")->default_value("1024"),
       "receive buffers per worker (a power of two)")  //
      ("buffer-size", po::value(&raw.buffer_size)->value_name("SIZE")->default_value("16896"),
       "bytes per receive buffer (16896 holds a full TLS record)")  //
      ("max-connections", po::value(&raw.max_connections)->value_name("N")->default_value("0"),
       "downstream connections per worker (0: limited by descriptors only)")  //
      ("tls13-only", po::bool_switch(&raw.tls13_only), "refuse TLS 1.2");

  po::options_description http("HTTP (listeners with protocol=http)", kHelpWidth, kHelpWidth / 2);
  http.add_options()  //
      ("route", po::value(&raw.route)->value_name("HOST[/PREFIX]=SVC"),
       "egress: requests for HOST (exact, *.DOMAIN or *) whose path starts with PREFIX go to "
       "service SVC; repeatable; exact host before wildcards, then the longest prefix; others "
       "go to the listener's service; key: retries=N (this route's retry limit)")  //
      ("retries", po::value(&raw.retries)->value_name("N")->default_value("2"),
       "retries of a request on connect failure, reset before any response byte, or 503 "
       "(idempotent requests whose body has not started)")  //
      ("grpc-retry-on",
       po::value(&raw.grpc_retry_on)->value_name("CODES")->default_value("unavailable"),
       "gRPC calls answered with one of these grpc-status codes (Trailers-Only or in the "
       "trailers, before any response DATA) are retried, within --retries, when the request "
       "was held whole (up to 64 KiB): comma-separated from cancelled, deadline-exceeded, "
       "internal, resource-exhausted, unavailable; 'none' for no status")  //
      ("grpc-per-try-timeout",
       po::value(&raw.grpc_per_try_timeout)->value_name("DURATION")->default_value("0"),
       "a gRPC call's attempt that has no response within this is cancelled and retried "
       "(within --retries; 0: no per-try limit)")  //
      ("request-timeout",
       po::value(&raw.request_timeout)->value_name("DURATION")->default_value("15s"),
       "end of request to end of response: 504 (gRPC: DEADLINE_EXCEEDED) if no response "
       "started, else the response is cut (RST_STREAM on HTTP/2); a gRPC call's "
       "grpc-timeout, when smaller, bounds it too (0: off)")  //
      ("http-idle-timeout",
       po::value(&raw.http_idle_timeout)->value_name("DURATION")->default_value("5m"),
       "close a keep-alive HTTP connection with no request this long (0: never)")  //
      ("request-header-timeout",
       po::value(&raw.request_header_timeout)->value_name("TIME")->default_value("10s"),
       "a client must send a whole request head within this DURATION, else 408 (0: off)")  //
      ("no-request-id", po::bool_switch(&raw.no_request_id),
       "do not add x-request-id to requests that have none")  //
      ("no-forwarded-headers", po::bool_switch(&raw.no_forwarded_headers),
       "ingress: do not add x-forwarded-for and x-forwarded-proto")  //
      ("trusted-downstream", po::value(&raw.trusted_downstream)->value_name("CIDR[,CIDR...]"),
       "ingress: clients in these address ranges (a load balancer's subnets) keep the "
       "x-forwarded-proto they send; others get https; repeatable")  //
      ("no-server-header", po::bool_switch(&raw.no_server_header),
       "do not set server: ringside on responses")  //
      ("no-upstream-service-time", po::bool_switch(&raw.no_upstream_service_time),
       "do not add x-upstream-service-time (ms) to responses")  //
      ("no-forwarded-client-cert", po::bool_switch(&raw.no_forwarded_client_cert),
       "ingress: do not add x-forwarded-client-cert (the verified client identity, Envoy's "
       "format) to requests; one the client sent is removed either way")  //
      ("access-log", po::value(&raw.access_log)->value_name("PATH|-"),
       "one line per HTTP request, appended to PATH or written to stdout (-)")  //
      ("access-log-format",
       po::value(&raw.access_log_format)->value_name("FORMAT")->default_value("text"),
       "text (Envoy-like) or json")  //
      ("log-query", po::bool_switch(&raw.log_query), "keep the query string in logged paths");

  po::options_description http2(
      "HTTP/2 (both sides of the HTTP listeners; byte counts take k and m)", kHelpWidth,
      kHelpWidth / 2);
  http2.add_options()  //
      ("h2-max-concurrent-streams",
       po::value(&raw.h2_max_concurrent_streams)->value_name("N")->default_value("100"),
       "streams a peer may have open on one connection, 1 to 2^31-1; more are refused "
       "(REFUSED_STREAM)")  //
      ("h2-initial-stream-window",
       po::value(&raw.h2_initial_stream_window)->value_name("N")->default_value("64k"),
       "bytes a peer may send on one stream before the proxy has passed them on "
       "(65535 to 2^31-1)")  //
      ("h2-initial-connection-window",
       po::value(&raw.h2_initial_connection_window)->value_name("N")->default_value("1m"),
       "the same for all the streams of one connection (65535 to 2^31-1)")  //
      ("h2-max-header-list",
       po::value(&raw.h2_max_header_list)->value_name("N")->default_value("60k"),
       "decoded bytes of one header block (name + value + 32 per field; 1k to 1m)")  //
      ("h2-max-headers", po::value(&raw.h2_max_headers)->value_name("N")->default_value("100"),
       "header fields in one header block (1 to 10000)");

  po::options_description admin("Admin", kHelpWidth, kHelpWidth / 2);
  admin.add_options()  //
      ("admin", po::value(&raw.admin)->value_name("ADDR")->default_value("127.0.0.1:9901"),
       "admin HTTP server (/ready, /stats, /certs, ...); 'off' disables it")  //
      ("admin-allow-remote", po::bool_switch(&raw.admin_allow_remote),
       "allow --admin on a non-loopback address");

  po::options_description logging("Logging", kHelpWidth, kHelpWidth / 2);
  logging.add_options()  //
      ("log-level", po::value(&raw.log_level)->value_name("LEVEL")->default_value("info"),
       "error, warn, info or debug");

  all.add(listeners)
      .add(upstreams)
      .add(certificates)
      .add(timeouts)
      .add(performance)
      .add(http)
      .add(http2)
      .add(admin)
      .add(logging);
}

// ---- small parsers --------------------------------------------------------------------

bool parse_unsigned(std::string_view text, uint64_t* out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return !text.empty() && ec == std::errc() && ptr == end;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t at = text.find(separator, start);
    parts.push_back(text.substr(start, at == std::string_view::npos ? at : at - start));
    if (at == std::string_view::npos) return parts;
    start = at + 1;
  }
}

// A DNS-style service name: letters, digits, '-', '_', '.'.
bool is_service_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

bool is_loopback(const SocketAddress& address) {
  if (address.family() == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&address.storage);
    return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
  }
  if (address.family() == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
    if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) return true;
    return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && sin6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

bool is_wildcard(const SocketAddress& address) {
  if (address.family() == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_addr.s_addr ==
           htonl(INADDR_ANY);
  }
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
  return IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
}

// Resolves "HOST:PORT" or explains, in words for the user, why not.
SocketAddress resolve_or_fail(const std::string& flag, const std::string& value,
                              std::string_view role, std::string_view text) {
  std::string detail;
  auto address = SocketAddress::resolve(text, &detail);
  if (!address) {
    const std::string what = std::string(role) + " '" + std::string(text) + "'";
    if (text.find(':') == std::string_view::npos) fail(flag, value, what + " is not HOST:PORT");
    fail(flag, value, what + ": " + detail);
  }
  return address.value();
}

void check_readable_file(const std::string& flag, const std::string& path) {
  if (path.empty()) return;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(flag, path, std::string("cannot read: ") + std::strerror(errno));
  struct stat st {};
  const bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  ::close(fd);
  if (!regular) fail(flag, path, "not a regular file");
}

// The directory must exist and be writable, or be creatable in a writable parent.
void check_writable_dir(const std::string& flag, const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) fail(flag, path, "not a directory");
    if (access(path.c_str(), W_OK | X_OK) != 0) {
      fail(flag, path, std::string("not writable: ") + std::strerror(errno));
    }
    return;
  }
  std::string parent = path;
  while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
  const size_t slash = parent.rfind('/');
  parent = slash == std::string::npos ? "." : (slash == 0 ? "/" : parent.substr(0, slash));
  if (stat(parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
      access(parent.c_str(), W_OK | X_OK) != 0) {
    fail(flag, path, "does not exist and cannot be created in '" + parent + "'");
  }
}

Duration duration_or_fail(const std::string& flag, const std::string& value) {
  std::string detail;
  auto d = parse_duration(value, &detail);
  if (!d) fail("--" + flag + ": " + detail);
  return d.value();
}

uint64_t size_or_fail(const std::string& flag, const std::string& value) {
  std::string detail;
  auto size = parse_size(value, &detail);
  if (!size) fail("--" + flag + ": " + detail);
  return size.value();
}

uint64_t number_or_fail(const std::string& flag, const std::string& value, uint64_t min,
                        uint64_t max) {
  uint64_t n = 0;
  if (!parse_unsigned(value, &n)) fail(flag, value, "not a whole number");
  if (n < min || n > max) {
    fail(flag, value, "out of range (" + std::to_string(min) + " to " + std::to_string(max) + ")");
  }
  return n;
}

std::string format_cpu_set(const cpu_set_t& set) {
  std::string out;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    int last = cpu;
    while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, &set)) ++last;
    if (!out.empty()) out += ",";
    out += std::to_string(cpu);
    if (last > cpu) out += "-" + std::to_string(last);
    cpu = last;
  }
  return out;
}

std::vector<int> parse_cpus(const std::string& value) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) CPU_SET(cpu, &allowed);
  }
  std::vector<int> cpus;
  std::set<int> seen;
  for (std::string_view item : split(value, ',')) {
    uint64_t first = 0, last = 0;
    const size_t dash = item.find('-');
    const bool ok = dash == std::string_view::npos
                        ? parse_unsigned(item, &first) && (last = first, true)
                        : parse_unsigned(item.substr(0, dash), &first) &&
                              parse_unsigned(item.substr(dash + 1), &last);
    if (!ok || first > last) {
      fail("cpus", value, "'" + std::string(item) + "' is not a CPU number or range like 2-3");
    }
    for (uint64_t cpu = first; cpu <= last; ++cpu) {
      if (cpu >= CPU_SETSIZE || !CPU_ISSET(static_cast<int>(cpu), &allowed)) {
        fail("cpus", value,
             "CPU " + std::to_string(cpu) +
                 " is not available to this process (allowed: " + format_cpu_set(allowed) + ")");
      }
      if (!seen.insert(static_cast<int>(cpu)).second) {
        fail("cpus", value, "CPU " + std::to_string(cpu) + " is listed twice");
      }
      cpus.push_back(static_cast<int>(cpu));
    }
  }
  return cpus;
}

// ---- listeners and upstreams ----------------------------------------------------------

struct KeyValue {
  std::string_view key, value;
};

std::vector<KeyValue> parse_keys(const std::string& flag, const std::string& spec,
                                 const std::vector<std::string_view>& items) {
  std::vector<KeyValue> keys;
  std::set<std::string_view> seen;
  for (size_t i = 1; i < items.size(); ++i) {
    const size_t eq = items[i].find('=');
    if (eq == std::string_view::npos || eq == 0) {
      // "alpn=h2,http/1.1": ',' separates keys, so the list's own separator is ':'.
      const bool after_alpn = !keys.empty() && keys.back().key == "alpn";
      fail(flag, spec,
           "'" + std::string(items[i]) + "' is not KEY=VALUE" +
               (after_alpn ? " (separate ALPN ids with ':', as in alpn=h2:http/1.1)" : ""));
    }
    KeyValue kv{items[i].substr(0, eq), items[i].substr(eq + 1)};
    if (!seen.insert(kv.key).second) {
      fail(flag, spec, "key '" + std::string(kv.key) + "' given twice");
    }
    keys.push_back(kv);
  }
  return keys;
}

Protocol protocol_or_fail(const std::string& flag, const std::string& spec,
                          std::string_view value) {
  if (value == "tcp") return Protocol::kTcp;
  if (value == "http") return Protocol::kHttp;
  if (value == "http2") return Protocol::kHttp2;
  if (value == "grpc") return Protocol::kGrpc;
  fail(flag, spec, "protocol '" + std::string(value) + "' is not tcp, http, http2 or grpc");
}

// alpn=h2:http/1.1: ALPN ids, most preferred first.
std::vector<std::string> alpn_or_fail(const std::string& flag, const std::string& spec,
                                      std::string_view value) {
  std::vector<std::string> ids;
  for (std::string_view id : split(value, ':')) {
    std::string detail;
    if (!tls::valid_alpn_id(id, &detail)) fail(flag, spec, "alpn: " + detail);
    for (const std::string& earlier : ids) {
      if (earlier == id) fail(flag, spec, "alpn: '" + std::string(id) + "' is listed twice");
    }
    ids.emplace_back(id);
  }
  return ids;
}

// What a listener negotiates: the alpn= key on protocol=tcp; h2 and HTTP/1.1 on the HTTP
// listeners (protocol=http|http2|grpc), both ways.
void settle_alpn(const std::string& flag, const std::string& spec, ListenerConfig& listener,
                 bool alpn_given) {
  if (alpn_given && listener.protocol != Protocol::kTcp) {
    fail(flag, spec,
         "alpn applies to protocol=tcp listeners (protocol=" +
             std::string(to_string(listener.protocol)) + " negotiates its own)");
  }
  if (alpn_given && listener.kind == ListenerKind::kEgress && !listener.tls) {
    fail(flag, spec, "alpn needs tls=on (ALPN is part of the TLS handshake)");
  }
  if (alpn_given && !tls::context_alpn_supported()) {
    fail(flag, spec,
         "alpn needs the wolfSSL that tools/build-wolfssl.sh builds (this one lacks "
         "wolfSSL_CTX_UseALPN)");
  }
  // An HTTP listener names its protocols where the TLS library can. An ingress serves
  // HTTP/2 or HTTP/1.1 as the client chose (without ALPN: HTTP/1.1, or HTTP/2 when its
  // preface arrives); an egress offers both to the remote sidecar and multiplexes its
  // requests over one connection per endpoint when the peer picks h2.
  if (listener.protocol != Protocol::kTcp && tls::context_alpn_supported()) {
    listener.alpn = {"h2", "http/1.1"};
    if (!listener.h2) listener.alpn = {"http/1.1"};
  }
}

ListenerConfig parse_listener(ListenerKind kind, const std::string& spec) {
  const std::string flag = kind == ListenerKind::kIngress ? "ingress" : "egress";
  const std::vector<std::string_view> items = split(spec, ',');
  const std::string_view head = items[0];
  const size_t eq = head.find('=');
  if (eq == std::string_view::npos) {
    fail(flag, spec,
         kind == ListenerKind::kIngress ? "expected LISTEN=TARGET" : "expected LISTEN=SERVICE");
  }
  ListenerConfig listener;
  listener.kind = kind;
  listener.listen = resolve_or_fail(flag, spec, "listen address", head.substr(0, eq));
  if (listener.listen.port() == 0) {
    // Every worker binds its own SO_REUSEPORT socket: they must agree on a port.
    fail(flag, spec, "listen port 0 is not allowed: give the port to listen on");
  }
  listener.name = flag + "_" + listener.listen.to_string();
  const std::string_view target = head.substr(eq + 1);

  if (kind == ListenerKind::kIngress) {
    listener.target = resolve_or_fail(flag, spec, "target", target);
    if (listener.target.port() == 0) fail(flag, spec, "target port 0 is not a port to connect to");
    bool alpn_given = false;
    for (const KeyValue& kv : parse_keys(flag, spec, items)) {
      if (kv.key == "protocol") {
        listener.protocol = protocol_or_fail(flag, spec, kv.value);
      } else if (kv.key == "alpn") {
        listener.alpn = alpn_or_fail(flag, spec, kv.value);
        alpn_given = true;
      } else if (kv.key == "client-cert") {
        if (kv.value == "none") {
          listener.client_cert = tls::ClientCertMode::kNone;
        } else if (kv.value == "optional") {
          listener.client_cert = tls::ClientCertMode::kOptional;
        } else if (kv.value == "require") {
          listener.client_cert = tls::ClientCertMode::kRequire;
        } else {
          fail(flag, spec,
               "client-cert '" + std::string(kv.value) + "' is not none, optional or require");
        }
      } else if (kv.key == "tls") {
        if (kv.value != "strict" && kv.value != "permissive") {
          fail(flag, spec, "tls '" + std::string(kv.value) + "' is not strict or permissive");
        }
        listener.permissive = kv.value == "permissive";
      } else if (kv.key == "allow") {
        std::string detail;
        if (!authz::parse_allow_list(kv.value, &listener.authz.allow, &detail)) {
          fail(flag, spec, "allow: " + detail);
        }
        listener.authz.has_allow = true;
      } else if (kv.key == "authz") {
        if (kv.value != "enforce" && kv.value != "audit") {
          fail(flag, spec, "authz '" + std::string(kv.value) + "' is not enforce or audit");
        }
        listener.authz.mode = kv.value == "audit" ? authz::Mode::kAudit : authz::Mode::kEnforce;
      } else {
        fail(flag, spec,
             "unknown key '" + std::string(kv.key) +
                 "' (ingress keys: protocol, client-cert, alpn, tls, allow, authz)");
      }
    }
    if (listener.authz.has_allow && listener.client_cert != tls::ClientCertMode::kRequire) {
      fail(flag, spec,
           "allow needs client-cert=require (an identity comes from a verified client "
           "certificate)");
    }
    if (listener.permissive && listener.client_cert == tls::ClientCertMode::kRequire) {
      fail(flag, spec,
           "client-cert=require and tls=permissive contradict each other: a plaintext client "
           "has no certificate to require");
    }
    settle_alpn(flag, spec, listener, alpn_given);
    return listener;
  }

  if (!is_service_name(target)) {
    fail(flag, spec, "service '" + std::string(target) + "' is not a service name");
  }
  listener.service = std::string(target);
  listener.san = listener.service;
  listener.sni = listener.service;
  bool alpn_given = false;
  for (const KeyValue& kv : parse_keys(flag, spec, items)) {
    if (kv.key == "protocol") {
      listener.protocol = protocol_or_fail(flag, spec, kv.value);
    } else if (kv.key == "alpn") {
      listener.alpn = alpn_or_fail(flag, spec, kv.value);
      alpn_given = true;
    } else if (kv.key == "spiffe-id") {
      authz::IdentityPattern id;
      std::string detail;
      if (!authz::parse_pattern(kv.value, &id, &detail) ||
          id.kind != authz::IdentityPattern::Kind::kUri) {
        fail(flag, spec,
             "spiffe-id '" + std::string(kv.value) +
                 "' is not a SPIFFE ID (spiffe://TRUST-DOMAIN/PATH, no wildcard)");
      }
      listener.spiffe_id = std::string(kv.value);
    } else if (kv.key == "san" && kv.value == "none") {
      listener.san.clear();
    } else if (kv.key == "san" || kv.key == "sni") {
      if (!is_service_name(kv.value)) {
        fail(flag, spec,
             std::string(kv.key) + " '" + std::string(kv.value) + "' is not a DNS name");
      }
      (kv.key == "san" ? listener.san : listener.sni) = std::string(kv.value);
    } else if (kv.key == "tls") {
      if (kv.value != "on" && kv.value != "off") {
        fail(flag, spec, "tls '" + std::string(kv.value) + "' is not on or off");
      }
      listener.tls = kv.value == "on";
    } else if (kv.key == "h2") {
      if (kv.value != "on" && kv.value != "off") {
        fail(flag, spec, "h2 '" + std::string(kv.value) + "' is not on or off");
      }
      listener.h2 = kv.value == "on";
    } else {
      fail(flag, spec,
           "unknown key '" + std::string(kv.key) +
               "' (egress keys: protocol, san, sni, tls, alpn, h2, spiffe-id)");
    }
  }
  if (listener.san.empty() && listener.spiffe_id.empty()) {
    fail(flag, spec, "san=none needs spiffe-id=ID (the upstream must prove some identity)");
  }
  if (!listener.spiffe_id.empty() && !listener.tls) {
    fail(flag, spec, "spiffe-id needs tls=on (it is checked in the TLS handshake)");
  }
  if (!listener.h2 && listener.protocol == Protocol::kTcp) {
    fail(flag, spec, "h2=off applies to the HTTP protocols (protocol=http|http2|grpc)");
  }
  settle_alpn(flag, spec, listener, alpn_given);
  return listener;
}

// --authz-rule LISTEN,KEY=VAL...: LISTEN names an HTTP ingress by its listen address (as
// given to --ingress, or its name ingress_ADDR).
void add_authz_rule(Config& config, const std::string& spec) {
  const size_t comma = spec.find(',');
  const std::string which = spec.substr(0, comma);
  if (which.empty()) fail("authz-rule", spec, "expected LISTEN,KEY=VAL...");
  ListenerConfig* target = nullptr;
  for (ListenerConfig& listener : config.listeners) {
    if (listener.kind == ListenerKind::kIngress &&
        (listener.name == which || listener.name == "ingress_" + which)) {
      target = &listener;
    }
  }
  if (target == nullptr) {
    auto address = SocketAddress::parse_numeric(which);
    for (ListenerConfig& listener : config.listeners) {
      if (address.ok() && listener.kind == ListenerKind::kIngress &&
          listener.listen.to_string() == address->to_string()) {
        target = &listener;
      }
    }
  }
  if (target == nullptr) {
    fail("authz-rule", spec, "no --ingress listens on '" + which + "'");
  }
  if (target->protocol == Protocol::kTcp) {
    fail("authz-rule", spec,
         target->name +
             " is protocol=tcp: rules apply to HTTP listeners (protocol=http|http2|grpc)");
  }
  if (target->client_cert != tls::ClientCertMode::kRequire) {
    fail("authz-rule", spec,
         target->name +
             " needs client-cert=require (an identity comes from a verified client "
             "certificate)");
  }
  if (comma == std::string::npos) fail("authz-rule", spec, "allow=ID[|ID...] is required");
  authz::Rule rule;
  std::string detail;
  if (!authz::parse_rule(std::string_view(spec).substr(comma + 1), &rule, &detail)) {
    fail("authz-rule", spec, detail);
  }
  if (target->authz.rules.size() == authz::kMaxRules) {
    fail("authz-rule", spec,
         "more than " + std::to_string(authz::kMaxRules) + " rules for " + target->name);
  }
  target->authz.rules.push_back(std::move(rule));
}

// Two listeners collide on the same port and family when the addresses are equal or
// either is the wildcard address.
void check_no_overlap(const std::vector<ListenerConfig>& listeners, const ListenerConfig& added,
                      const std::string& spec) {
  for (const ListenerConfig& other : listeners) {
    if (other.listen.family() != added.listen.family() ||
        other.listen.port() != added.listen.port()) {
      continue;
    }
    const std::string flag = added.kind == ListenerKind::kIngress ? "ingress" : "egress";
    if (other.listen.to_string() == added.listen.to_string()) {
      fail(flag, spec,
           "listen address " + added.listen.to_string() + " is already used by " + other.name);
    }
    if (is_wildcard(other.listen) || is_wildcard(added.listen)) {
      fail(flag, spec, "listen address " + added.listen.to_string() + " overlaps " + other.name);
    }
  }
}

void add_dynamic_upstream(ServiceConfig& config, const std::string& spec,
                          const std::string& endpoint) {
  DynamicEndpoints source;
  source.text = endpoint;
  if (endpoint.rfind("dns:", 0) == 0) {
    source.kind = EndpointSourceKind::kDns;
    const std::string host_port = endpoint.substr(4);
    const size_t colon = host_port.rfind(':');
    uint64_t port = 0;
    if (colon == std::string::npos || !parse_unsigned(host_port.substr(colon + 1), &port) ||
        port == 0 || port > 65535) {
      fail("upstream", spec, "expected dns:HOST:PORT with a port in 1-65535");
    }
    source.host = host_port.substr(0, colon);
    if (!is_service_name(source.host)) {
      fail("upstream", spec, "'" + source.host + "' is not a DNS name");
    }
    source.port = static_cast<uint16_t>(port);
  } else {
    source.kind = EndpointSourceKind::kFile;
    source.path = endpoint.substr(5);
    if (source.path.empty()) fail("upstream", spec, "expected file:PATH");
    check_readable_file("upstream", source.path);
    // The file must be usable at start-up; a later bad version is refused at run time
    // (the last good endpoints stay).
    std::string text;
    std::vector<SocketAddress> endpoints;
    std::string detail;
    if (!certs::read_whole_file(source.path, &text, &detail)) fail("upstream", spec, detail);
    if (!parse_endpoint_file(text, &endpoints, &detail)) {
      fail("upstream", spec, source.path + ": " + detail);
    }
  }
  for (const DynamicEndpoints& existing : config.dynamic) {
    if (existing.text == source.text) {
      fail("upstream", spec, source.text + " is already an upstream of " + config.name);
    }
  }
  config.dynamic.push_back(std::move(source));
}

void add_upstream(std::map<std::string, ServiceConfig>& services, const std::string& spec) {
  const size_t eq = spec.find('=');
  if (eq == std::string::npos) fail("upstream", spec, "expected SERVICE=HOST:PORT");
  const std::string service = spec.substr(0, eq);
  const std::string endpoint = spec.substr(eq + 1);
  if (!is_service_name(service)) {
    fail("upstream", spec, "service '" + service + "' is not a service name");
  }
  ServiceConfig& config = services[service];
  config.name = service;
  if (endpoint.rfind("dns:", 0) == 0 || endpoint.rfind("file:", 0) == 0) {
    add_dynamic_upstream(config, spec, endpoint);
    return;
  }
  UpstreamEndpoint upstream;
  upstream.text = endpoint;
  upstream.address = resolve_or_fail("upstream", spec, "endpoint", endpoint);
  if (upstream.address.port() == 0) fail("upstream", spec, "port 0 is not a port to connect to");
  for (const UpstreamEndpoint& existing : config.endpoints) {
    if (existing.address.to_string() == upstream.address.to_string()) {
      fail("upstream", spec,
           "endpoint " + upstream.address.to_string() + " is already an upstream of " + service);
    }
  }
  config.endpoints.push_back(std::move(upstream));
}

std::optional<LbPolicy> parse_lb_policy(std::string_view text) {
  if (text == "round-robin") return LbPolicy::kRoundRobin;
  if (text == "least-request") return LbPolicy::kLeastRequest;
  if (text == "p2c-ewma") return LbPolicy::kP2cEwma;
  return std::nullopt;
}

void add_lb_policy(Config& config, const std::string& spec) {
  const size_t eq = spec.find('=');
  const std::string policy_text = eq == std::string::npos ? spec : spec.substr(eq + 1);
  const std::optional<LbPolicy> policy = parse_lb_policy(policy_text);
  if (!policy) {
    fail("lb-policy", spec,
         "'" + policy_text + "' is not a policy (round-robin, least-request, p2c-ewma)");
  }
  if (eq == std::string::npos) {
    if (config.lb_default) fail("lb-policy", spec, "a default policy is already set");
    config.lb_default = policy;
    return;
  }
  const std::string service = spec.substr(0, eq);
  auto it = config.services.find(service);
  if (it == config.services.end()) {
    fail("lb-policy", spec, "service '" + service + "' has no --upstream");
  }
  if (it->second.lb) fail("lb-policy", spec, "service '" + service + "' has a policy already");
  it->second.lb = policy;
}

void build_upstream_config(const RawOptions& raw, Config& config) {
  for (const std::string& spec : raw.upstream) add_upstream(config.services, spec);
  for (const std::string& spec : raw.lb_policy) add_lb_policy(config, spec);
  config.dns_refresh = duration_or_fail("dns-refresh", raw.dns_refresh);
  if (config.dns_refresh.count() < 100) {
    fail("dns-refresh", raw.dns_refresh, "must be at least 100ms");
  }
  OutlierConfig& outlier = config.outlier;
  outlier.consecutive_connect_failures = static_cast<unsigned>(
      number_or_fail("outlier-connect-failures", raw.outlier_connect_failures, 0, 1000));
  outlier.consecutive_5xx = static_cast<unsigned>(
      number_or_fail("outlier-consecutive-5xx", raw.outlier_consecutive_5xx, 0, 1000));
  outlier.ejection_time = duration_or_fail("outlier-ejection-time", raw.outlier_ejection_time);
  if (outlier.ejection_time.count() == 0) {
    fail("outlier-ejection-time", raw.outlier_ejection_time, "must be > 0");
  }
  outlier.max_ejection_percent = static_cast<unsigned>(
      number_or_fail("outlier-max-ejection-percent", raw.outlier_max_ejection_percent, 0, 100));
}

// ---- HTTP -------------------------------------------------------------------------------

http::Route parse_route(const std::string& spec) {
  const size_t eq = spec.find('=');
  if (eq == std::string::npos) fail("route", spec, "expected HOST[/PREFIX]=SERVICE");
  http::Route route;
  std::string detail;
  if (!http::parse_route_key(std::string_view(spec).substr(0, eq), route, &detail)) {
    fail("route", spec, detail);
  }
  const std::vector<std::string_view> items = split(std::string_view(spec).substr(eq + 1), ',');
  if (!is_service_name(items[0])) {
    fail("route", spec, "service '" + std::string(items[0]) + "' is not a service name");
  }
  route.service = std::string(items[0]);
  for (const KeyValue& kv : parse_keys("route", spec, items)) {
    if (kv.key == "retries") {
      uint64_t n = 0;
      if (!parse_unsigned(kv.value, &n) || n > kMaxRetries) {
        fail("route", spec,
             "retries '" + std::string(kv.value) + "' is not 0 to " + std::to_string(kMaxRetries));
      }
      route.retries = static_cast<unsigned>(n);
    } else {
      fail("route", spec, "unknown key '" + std::string(kv.key) + "' (route keys: retries)");
    }
  }
  return route;
}

// The file must be appendable, or creatable in a writable directory.
void check_log_file(const std::string& flag, const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) fail(flag, path, "is a directory");
    if (access(path.c_str(), W_OK) != 0) {
      fail(flag, path, std::string("not writable: ") + std::strerror(errno));
    }
    return;
  }
  const size_t slash = path.rfind('/');
  const std::string parent =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  if (stat(parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
      access(parent.c_str(), W_OK | X_OK) != 0) {
    fail(flag, path, "does not exist and cannot be created in '" + parent + "'");
  }
}

// Whether every listener that sends to service does so in plaintext (an egress with
// tls=off naming it, or an HTTP egress with tls=off routing to it).
// The egress listener that reaches service over TLS (directly, or through an HTTP route),
// if any: its health checks go over TLS with its SNI and verified name.
const ListenerConfig* reached_over_tls(const Config& config, const std::string& service) {
  bool routed = false;
  for (const http::Route& route : config.http.routes) routed = routed || route.service == service;
  for (const ListenerConfig& lc : config.listeners) {
    if (lc.kind != ListenerKind::kEgress || !lc.tls) continue;
    if (lc.service == service || (routed && lc.protocol != Protocol::kTcp)) return &lc;
  }
  return nullptr;
}

void build_health_checks(const RawOptions& raw, Config& config) {
  HealthCheckTiming& timing = config.health_timing;
  timing.interval = duration_or_fail("health-check-interval", raw.health_check_interval);
  if (timing.interval.count() < 100) {
    fail("health-check-interval", raw.health_check_interval, "must be at least 100ms");
  }
  timing.timeout = duration_or_fail("health-check-timeout", raw.health_check_timeout);
  if (timing.timeout.count() == 0 || timing.timeout > timing.interval) {
    fail("health-check-timeout", raw.health_check_timeout,
         "must be > 0 and at most --health-check-interval (" + format_duration(timing.interval) +
             ")");
  }
  timing.healthy_threshold = static_cast<unsigned>(
      number_or_fail("health-check-healthy-threshold", raw.health_check_healthy, 1, 10));
  timing.unhealthy_threshold = static_cast<unsigned>(
      number_or_fail("health-check-unhealthy-threshold", raw.health_check_unhealthy, 1, 10));
  for (const std::string& spec : raw.health_check) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos) fail("health-check", spec, "expected TARGET=KIND[:ARG]");
    HealthCheckConfig check;
    check.target = spec.substr(0, eq);
    const std::string what = spec.substr(eq + 1);
    const size_t colon = what.find(':');
    const std::string kind = what.substr(0, colon);
    if (colon != std::string::npos) check.arg = what.substr(colon + 1);
    if (kind == "tcp") {
      check.kind = HealthCheckConfig::Kind::kTcp;
      if (colon != std::string::npos) fail("health-check", spec, "tcp takes no argument");
    } else if (kind == "http") {
      check.kind = HealthCheckConfig::Kind::kHttp;
      if (check.arg.empty()) check.arg = "/";
      if (check.arg.front() != '/' || check.arg.find_first_of(" \r\n") != std::string::npos) {
        fail("health-check", spec, "the http path must start with '/' and hold no spaces");
      }
    } else if (kind == "grpc") {
      check.kind = HealthCheckConfig::Kind::kGrpc;
      if (check.arg.size() > 127) fail("health-check", spec, "the gRPC service name is too long");
    } else {
      fail("health-check", spec, "'" + kind + "' is not tcp, http or grpc");
    }
    if (check.target == "app") {
      bool ingress = false;
      for (const ListenerConfig& lc : config.listeners) {
        ingress = ingress || lc.kind == ListenerKind::kIngress;
      }
      if (!ingress)
        fail("health-check", spec, "'app' is the local app of an --ingress: none given");
    } else if (config.services.count(check.target) == 0) {
      fail("health-check", spec, "service '" + check.target + "' has no --upstream");
    } else if (const ListenerConfig* lc = reached_over_tls(config, check.target);
               lc != nullptr && check.kind != HealthCheckConfig::Kind::kTcp) {
      // A routed service is addressed and verified by its own name.
      const bool own = lc->service == check.target;
      check.tls = true;
      check.sni = own && !lc->sni.empty() ? lc->sni : check.target;
      check.verify_name = own && !lc->san.empty() ? lc->san : check.target;
    }
    for (const HealthCheckConfig& existing : config.health_checks) {
      if (existing.target == check.target) {
        fail("health-check", spec, "'" + check.target + "' has a health check already");
      }
    }
    config.health_checks.push_back(std::move(check));
  }
}

// --grpc-retry-on: App Mesh's names for the gRPC statuses a retry may follow.
uint32_t grpc_retry_on_or_fail(const std::string& text) {
  if (text == "none") return 0;
  uint32_t mask = 0;
  for (std::string_view name : split(text, ',')) {
    const int code = name == "cancelled"            ? 1
                     : name == "deadline-exceeded"  ? 4
                     : name == "resource-exhausted" ? 8
                     : name == "internal"           ? 13
                     : name == "unavailable"        ? 14
                                                    : -1;
    if (code < 0) {
      fail("grpc-retry-on", text,
           "'" + std::string(name) +
               "' is not one of cancelled, deadline-exceeded, internal, resource-exhausted, "
               "unavailable (or none)");
    }
    mask |= 1u << code;
  }
  return mask;
}

void build_http_config(const RawOptions& raw, const po::variables_map& vm, Config& config) {
  http::HttpConfig& http = config.http;
  http.retries = static_cast<unsigned>(number_or_fail("retries", raw.retries, 0, kMaxRetries));
  http.request_timeout = duration_or_fail("request-timeout", raw.request_timeout);
  http.grpc_retry_on = grpc_retry_on_or_fail(raw.grpc_retry_on);
  http.grpc_per_try_timeout = duration_or_fail("grpc-per-try-timeout", raw.grpc_per_try_timeout);
  http.idle_timeout = duration_or_fail("http-idle-timeout", raw.http_idle_timeout);
  http.request_header_timeout =
      duration_or_fail("request-header-timeout", raw.request_header_timeout);
  http.headers.request_id = !raw.no_request_id;
  http.headers.forwarded = !raw.no_forwarded_headers;
  http.headers.server = !raw.no_server_header;
  http.headers.upstream_service_time = !raw.no_upstream_service_time;
  http.headers.client_cert = !raw.no_forwarded_client_cert;
  if (vm.count("access-log")) {
    if (raw.access_log.empty()) fail("access-log", raw.access_log, "give a file path or -");
    if (raw.access_log != "-") check_log_file("access-log", raw.access_log);
    http.access_log = raw.access_log;
  }
  if (raw.access_log_format == "text") {
    http.access_log_format = http::AccessLogFormat::kText;
  } else if (raw.access_log_format == "json") {
    http.access_log_format = http::AccessLogFormat::kJson;
  } else {
    fail("access-log-format", raw.access_log_format, "not text or json");
  }
  http.log_query = raw.log_query;

  bool http_ingress = false;
  for (const ListenerConfig& listener : config.listeners) {
    http_ingress = http_ingress ||
                   (listener.kind == ListenerKind::kIngress && listener.protocol != Protocol::kTcp);
  }
  for (const std::string& spec : raw.trusted_downstream) {
    if (!http_ingress) {
      fail("trusted-downstream", spec,
           "applies to --ingress listeners with protocol=http; there is none");
    }
    for (std::string_view item : split(spec, ',')) {
      std::string detail;
      auto range = IpRange::parse(item, &detail);
      if (!range) fail("trusted-downstream", spec, detail);
      http.trusted_downstreams.push_back(range.value());
    }
  }

  bool http_egress = false;
  for (const ListenerConfig& listener : config.listeners) {
    http_egress = http_egress ||
                  (listener.kind == ListenerKind::kEgress && listener.protocol != Protocol::kTcp);
  }
  std::set<std::pair<std::string, std::string>> keys;
  for (const std::string& spec : raw.route) {
    http::Route route = parse_route(spec);
    if (!keys.insert({route.host, route.path_prefix}).second) {
      fail("route", spec, "a route for " + route.host + route.path_prefix + " is already given");
    }
    if (config.services.count(route.service) == 0) {
      fail("route", spec, "no --upstream for service '" + route.service + "'");
    }
    if (!http_egress) {
      fail("route", spec, "routes apply to --egress listeners with protocol=http; there is none");
    }
    http.routes.push_back(std::move(route));
  }
}

void build_http2_config(const RawOptions& raw, Config& config) {
  http2::Settings& h2 = config.http2;
  h2.max_concurrent_streams = static_cast<uint32_t>(number_or_fail(
      "h2-max-concurrent-streams", raw.h2_max_concurrent_streams, 1, http2::kMaxWindow));
  auto size_in = [](const std::string& flag, const std::string& value, uint64_t min, uint64_t max) {
    const uint64_t n = size_or_fail(flag, value);
    if (n < min || n > max) {
      fail(flag, value,
           "out of range (" + std::to_string(min) + " to " + std::to_string(max) + " bytes)");
    }
    return static_cast<uint32_t>(n);
  };
  h2.initial_stream_window = size_in("h2-initial-stream-window", raw.h2_initial_stream_window,
                                     http2::kMinWindow, http2::kMaxWindow);
  h2.initial_connection_window =
      size_in("h2-initial-connection-window", raw.h2_initial_connection_window, http2::kMinWindow,
              http2::kMaxWindow);
  h2.max_header_list = size_in("h2-max-header-list", raw.h2_max_header_list, http2::kMinHeaderList,
                               http2::kMaxHeaderList);
  h2.max_headers = static_cast<uint32_t>(
      number_or_fail("h2-max-headers", raw.h2_max_headers, 1, http2::kMaxHeaders));
}

// ---- whole-config checks --------------------------------------------------------------

void build_config(const RawOptions& raw, const po::variables_map& vm, Config& config) {
  if (vm.count("service-name")) {
    if (!is_service_name(raw.service_name)) {
      fail("service-name", raw.service_name, "not a service name (letters, digits, '-', '.')");
    }
    config.service_name = raw.service_name;
  }

  std::vector<std::string> specs;  // specs[i] is what the user wrote for listeners[i]
  for (const std::string& spec : raw.ingress) {
    ListenerConfig listener = parse_listener(ListenerKind::kIngress, spec);
    check_no_overlap(config.listeners, listener, spec);
    config.listeners.push_back(std::move(listener));
    specs.push_back(spec);
  }
  for (const std::string& spec : raw.egress) {
    ListenerConfig listener = parse_listener(ListenerKind::kEgress, spec);
    check_no_overlap(config.listeners, listener, spec);
    config.listeners.push_back(std::move(listener));
    specs.push_back(spec);
  }
  build_upstream_config(raw, config);

  // Certificate sources.
  config.cert_path = raw.cert;
  config.key_path = raw.key;
  config.trust_path = raw.trust;
  config.ca_cert_path = raw.ca_cert;
  config.ca_key_path = raw.ca_key;
  config.cert_dir = raw.cert_dir;
  config.ca_url = raw.ca_url;
  if (!raw.cert.empty() && raw.key.empty()) fail("--cert needs --key (the certificate's key)");
  if (raw.cert.empty() && !raw.key.empty()) fail("--key needs --cert (the certificate)");
  if (!raw.ca_cert.empty() && raw.ca_key.empty()) fail("--ca-cert needs --ca-key");
  if (raw.ca_cert.empty() && !raw.ca_key.empty()) fail("--ca-key needs --ca-cert");
  const bool files_source = !raw.cert.empty();
  const bool issuer_source = !raw.ca_cert.empty();
  const bool remote_source = !raw.ca_url.empty();
  const bool acme_source = !raw.acme_directory.empty();
  if (acme_source && (issuer_source || remote_source || files_source)) {
    fail("acme-directory", raw.acme_directory,
         "is a certificate source of its own: not with --ca-url, --ca-cert or --cert");
  }
  if (files_source + issuer_source + remote_source > 1) {
    fail("give one certificate source: --cert/--key, --ca-cert/--ca-key or --ca-url");
  }
  if (!raw.cert_dir.empty() && !issuer_source && !remote_source && !acme_source) {
    fail(
        "--cert-dir holds issued certificates: it needs --ca-cert/--ca-key, --ca-url or "
        "--acme-directory");
  }
  if (acme_source) {
    if (raw.acme_directory.rfind("https://", 0) != 0) {
      fail("acme-directory", raw.acme_directory, "not an https:// URL");
    }
    if (raw.ca_trust.empty()) {
      fail("acme-directory", raw.acme_directory,
           "needs --ca-trust (the CAs the ACME server's certificate chains to)");
    }
    if (raw.cert_dir.empty()) {
      fail("acme-directory", raw.acme_directory,
           "needs --cert-dir (where the ACME account key is kept)");
    }
    check_readable_file("ca-trust", raw.ca_trust);
    config.acme_directory = raw.acme_directory;
  }
  if (!raw.acme_http_port.empty()) {
    if (!acme_source) fail("--acme-http-port is for ACME: it needs --acme-directory");
    std::string address = raw.acme_http_port.find(':') == std::string::npos
                              ? "0.0.0.0:" + raw.acme_http_port
                              : raw.acme_http_port;
    auto parsed = SocketAddress::parse_numeric(address);
    if (!parsed.ok() || parsed->port() == 0) {
      fail("acme-http-port", raw.acme_http_port, "not [ADDRESS:]PORT with a port from 1");
    }
    config.acme_http_address = parsed->to_string();
  }
  check_readable_file("cert", raw.cert);
  check_readable_file("key", raw.key);
  check_readable_file("trust", raw.trust);
  check_readable_file("ca-cert", raw.ca_cert);
  check_readable_file("ca-key", raw.ca_key);
  if (!raw.cert_dir.empty()) check_writable_dir("cert-dir", raw.cert_dir);
  if (remote_source && raw.ca_url.rfind("http://", 0) != 0 &&
      raw.ca_url.rfind("https://", 0) != 0) {
    fail("ca-url", raw.ca_url, "not an http:// or https:// URL");
  }
  for (const auto& [flag, value] :
       {std::pair<const char*, const std::string&>{"ca-trust", raw.ca_trust},
        {"ca-client-cert", raw.ca_client_cert},
        {"ca-client-key", raw.ca_client_key},
        {"ca-auth-key", raw.ca_auth_key}}) {
    if (value.empty()) continue;
    if (acme_source && std::string_view(flag) == "ca-trust") continue;
    if (!remote_source) fail(std::string("--") + flag + " is for a remote CA: it needs --ca-url");
    check_readable_file(flag, value);
  }
  const bool https_ca = raw.ca_url.rfind("https://", 0) == 0;
  if (https_ca && raw.ca_trust.empty()) {
    fail("ca-url", raw.ca_url,
         "an https:// CA needs --ca-trust (the CAs its server certificate chains to)");
  }
  if (!https_ca && ((!raw.ca_trust.empty() && !acme_source) || !raw.ca_client_cert.empty())) {
    fail("--ca-trust and --ca-client-cert are for an https:// --ca-url");
  }
  if (raw.ca_client_cert.empty() != raw.ca_client_key.empty()) {
    fail("--ca-client-cert and --ca-client-key go together");
  }
  if (struct stat st{}; !raw.ca_auth_key.empty() && ::stat(raw.ca_auth_key.c_str(), &st) == 0 &&
                        (st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
    fail("ca-auth-key", raw.ca_auth_key,
         "is readable by other users: chmod 600 it (it lets its holder get certificates)");
  }
  config.ca_trust_path = raw.ca_trust;
  config.ca_client_cert_path = raw.ca_client_cert;
  config.ca_client_key_path = raw.ca_client_key;
  config.ca_auth_key_path = raw.ca_auth_key;
  if (raw.key_type == "ecdsa-p256") {
    config.key_type = tls::KeyType::kEcdsaP256;
  } else if (raw.key_type == "rsa-2048") {
    config.key_type = tls::KeyType::kRsa2048;
  } else {
    fail("key-type", raw.key_type, "not ecdsa-p256 or rsa-2048");
  }
  config.cert_lifetime = duration_or_fail("cert-lifetime", raw.cert_lifetime);
  config.cert_renew_after = duration_or_fail("cert-renew-after", raw.cert_renew_after);
  if (config.cert_lifetime.count() == 0) fail("cert-lifetime", raw.cert_lifetime, "must be > 0");
  if (config.cert_renew_after.count() == 0 || config.cert_renew_after >= config.cert_lifetime) {
    fail("cert-renew-after", raw.cert_renew_after,
         "must be more than 0 and less than --cert-lifetime (" +
             format_duration(config.cert_lifetime) + ")");
  }
  config.cert_renew_jitter_percent =
      static_cast<unsigned>(number_or_fail("cert-renew-jitter", raw.cert_renew_jitter, 0, 90));
  if ((issuer_source || remote_source || acme_source) && config.service_name.empty()) {
    fail("issuing certificates needs --service-name (the SAN they carry)");
  }

  // What each listener needs.
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    const ListenerConfig& listener = config.listeners[i];
    const std::string& spec = specs[i];
    const std::string flag = listener.kind == ListenerKind::kIngress ? "ingress" : "egress";
    if (listener.kind == ListenerKind::kIngress) {
      if (!files_source && !issuer_source && !remote_source && !acme_source) {
        fail(flag, spec,
             "needs a certificate: give --cert and --key, --ca-cert and --ca-key, --ca-url or "
             "--acme-directory");
      }
      if (config.service_name.empty()) {
        fail(flag, spec, "needs --service-name (the name clients verify)");
      }
      if (listener.client_cert != tls::ClientCertMode::kNone && raw.trust.empty()) {
        fail(flag, spec, "client-cert needs --trust (the CAs client certificates chain to)");
      }
    } else {
      if (listener.tls && raw.trust.empty()) {
        fail(flag, spec, "tls=on needs --trust (the CAs upstream certificates chain to)");
      }
      if (config.services.count(listener.service) == 0) {
        fail(flag, spec, "no --upstream for service '" + listener.service + "'");
      }
    }
  }

  // Authorization rules and the issued SPIFFE ID.
  for (const std::string& spec : raw.authz_rule) add_authz_rule(config, spec);
  if (!raw.spiffe_id.empty()) {
    authz::IdentityPattern id;
    std::string detail;
    if (!authz::parse_pattern(raw.spiffe_id, &id, &detail) ||
        id.kind != authz::IdentityPattern::Kind::kUri) {
      fail("spiffe-id", raw.spiffe_id, "not a SPIFFE ID (spiffe://TRUST-DOMAIN/PATH, no wildcard)");
    }
    if (!issuer_source) {
      fail("spiffe-id", raw.spiffe_id,
           "applies to certificates the local issuer makes (--ca-cert/--ca-key)");
    }
    config.spiffe_id = raw.spiffe_id;
  }

  // Admin.
  if (raw.admin != "off") {
    config.admin = resolve_or_fail("admin", raw.admin, "address", raw.admin);
    if (!raw.admin_allow_remote && !is_loopback(*config.admin)) {
      fail("admin", raw.admin,
           "not a loopback address (add --admin-allow-remote to serve it on the network)");
    }
  }

  // Performance.
  config.threads = static_cast<unsigned>(number_or_fail("threads", raw.threads, 0, kMaxThreads));
  if (vm.count("cpus") && !raw.cpus.empty()) {
    config.cpus = parse_cpus(raw.cpus);
    config.pin_threads = true;
    if (config.threads == 0) config.threads = static_cast<unsigned>(config.cpus.size());
  } else if (vm.count("cpus")) {
    fail("cpus", raw.cpus, "empty CPU list");
  }
  config.pin_threads = config.pin_threads || raw.pin_threads;
  config.max_pending_bytes = size_or_fail("max-pending-bytes", raw.max_pending_bytes);
  if (config.max_pending_bytes == 0)
    fail("max-pending-bytes", raw.max_pending_bytes, "must be > 0");
  config.buffer_count =
      static_cast<unsigned>(number_or_fail("buffers", raw.buffers, 1, kMaxBuffers));
  if ((config.buffer_count & (config.buffer_count - 1)) != 0) {
    fail("buffers", raw.buffers, "not a power of two");
  }
  const uint64_t buffer_size = size_or_fail("buffer-size", raw.buffer_size);
  if (buffer_size < kMinBufferSize || buffer_size > kMaxBufferSize) {
    fail("buffer-size", raw.buffer_size, "out of range (1k to 1m)");
  }
  config.buffer_size = static_cast<unsigned>(buffer_size);
  config.max_connections =
      static_cast<unsigned>(number_or_fail("max-connections", raw.max_connections, 0, 1u << 24));
  config.tls13_only = raw.tls13_only;

  // Timeouts.
  config.connect_timeout = duration_or_fail("connect-timeout", raw.connect_timeout);
  config.handshake_timeout = duration_or_fail("handshake-timeout", raw.handshake_timeout);
  config.tcp_idle_timeout = duration_or_fail("idle-timeout", raw.idle_timeout);
  config.drain_timeout = duration_or_fail("drain-timeout", raw.drain_timeout);
  if (config.connect_timeout.count() == 0)
    fail("connect-timeout", raw.connect_timeout, "must be > 0");
  if (config.handshake_timeout.count() == 0) {
    fail("handshake-timeout", raw.handshake_timeout, "must be > 0");
  }

  build_http_config(raw, vm, config);
  build_http2_config(raw, config);
  build_health_checks(raw, config);

  // Logging.
  if (raw.log_level != "error" && raw.log_level != "warn" && raw.log_level != "info" &&
      raw.log_level != "debug") {
    fail("log-level", raw.log_level, "not error, warn, info or debug");
  }
  config.log_level = raw.log_level;

  // Last, so that a mistake in any other flag is what the user hears about first.
  if (config.listeners.empty()) fail("nothing to do: give at least one --ingress or --egress");
}

// What Boost's INI reader would take in a way the user did not mean, said plainly: a
// "[section]" header (Boost would prefix every key after it with "section."), and a
// key without '=' (Boost's "the required argument ... is missing"). "" when fine.
std::string check_config_lines(const std::string& text) {
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    const size_t hash = line.find('#');
    std::string_view l = std::string_view(line).substr(0, hash);
    while (!l.empty() && (l.front() == ' ' || l.front() == '\t')) l.remove_prefix(1);
    while (!l.empty() && (l.back() == ' ' || l.back() == '\t' || l.back() == '\r')) {
      l.remove_suffix(1);
    }
    if (l.empty()) continue;
    const std::string where = "line " + std::to_string(number) + ": ";
    if (l.front() == '[') {
      return where + "'" + std::string(l) +
             "': sections are not used; write every key at the top level";
    }
    if (l.find('=') == std::string_view::npos) {
      return where + "'" + std::string(l) + "' has no value; write '" + std::string(l) +
             " = VALUE' (a switch: '" + std::string(l) + " = true')";
    }
  }
  return {};
}

// Paths in the file are relative to the file's folder, not to the current directory: the
// file keys that name files or folders, and the PATH of an upstream's file: source.
void resolve_relative_paths(po::parsed_options& parsed, const std::string& config_path) {
  const std::filesystem::path folder = std::filesystem::path(config_path).parent_path();
  if (folder.empty()) return;  // the file is in the current directory: nothing changes
  auto resolve = [&folder](const std::string& value) {
    if (value.empty() || value.front() == '/') return value;
    return (folder / value).lexically_normal().string();
  };
  static const std::set<std::string> kPathKeys = {"cert",    "key",    "trust",
                                                  "ca-cert", "ca-key", "cert-dir"};
  for (po::option& option : parsed.options) {
    for (std::string& value : option.value) {
      if (kPathKeys.count(option.string_key) != 0) {
        value = resolve(value);
      } else if (option.string_key == "access-log" && value != "-") {
        value = resolve(value);
      } else if (option.string_key == "upstream") {
        const size_t at = value.find("=file:");
        if (at != std::string::npos) {
          value = value.substr(0, at + 6) + resolve(value.substr(at + 6));
        }
      }
    }
  }
}

// Turns a Boost exception into our one line. where: "" for the command line, or
// "--config 'FILE': " for the file.
std::string describe_boost_error(const po::error& e, const std::string& where) {
  const bool in_file = !where.empty();
  const std::string noun = in_file ? "key" : "flag";
  if (const auto* unknown = dynamic_cast<const po::unknown_option*>(&e)) {
    return "ringside: " + where + "unknown " + noun + " '" + unknown->get_option_name() +
           "' (see --help)";
  }
  if (const auto* with_name = dynamic_cast<const po::error_with_option_name*>(&e)) {
    std::string name = with_name->get_option_name();
    if (in_file && name.rfind("--", 0) == 0) name = name.substr(2);
    if (dynamic_cast<const po::multiple_occurrences*>(&e)) {
      return "ringside: " + where + name + " given more than once (it takes one value)";
    }
    if (dynamic_cast<const po::invalid_command_line_syntax*>(&e) ||
        dynamic_cast<const po::invalid_syntax*>(&e)) {
      const auto& syntax = dynamic_cast<const po::invalid_syntax&>(e);
      switch (syntax.kind()) {
        case po::invalid_syntax::missing_parameter:
          return "ringside: " + where + name + " needs a value";
        case po::invalid_syntax::extra_parameter:
          return "ringside: " + where + name + " takes no value";
        default:
          break;
      }
    }
  }
  return "ringside: " + where + e.what();
}

std::string help_text(const po::options_description& shared,
                      const po::options_description& general) {
  // One description for printing, so every group shares one column layout.
  po::options_description display(kHelpWidth, kHelpWidth / 2);
  display.add(shared).add(general);
  std::ostringstream out;
  out << "ringside " RINGSIDE_VERSION " - TLS sidecar proxy\n\n"
      << "Usage: ringside --service-name NAME [--ingress LISTEN=TARGET[,...]]...\n"
      << "                [--egress LISTEN=SERVICE[,...]]... [--upstream SERVICE=HOST:PORT]...\n"
      << "                [certificate flags] [other flags] [--config FILE]\n"
      << "       ringside hosts [the same flags]   print the /etc/hosts lines of the egress\n"
      << "                                         listeners' client aliases, and exit\n"
      << "       ringside probe [--admin ADDR] [--timeout DURATION] [--wait DURATION]\n"
      << "                                         exit 0 when the sidecar's GET /ready says\n"
      << "                                         200, else 1 (a container health check)\n\n"
      << "Example:\n"
      << "  ringside --service-name app.ns --ingress 0.0.0.0:15443=127.0.0.1:8080 \\\n"
      << "    --egress 127.0.0.1:15080=orders.ns --upstream orders.ns=10.0.0.7:15443 \\\n"
      << "    --ca-cert ca.pem --ca-key ca.key --cert-dir /var/run/ringside --trust ca.pem"
      << display;
  return out.str();
}

}  // namespace

std::string_view to_string(Protocol protocol) {
  switch (protocol) {
    case Protocol::kTcp:
      return "tcp";
    case Protocol::kHttp:
      return "http";
    case Protocol::kHttp2:
      return "http2";
    case Protocol::kGrpc:
      return "grpc";
  }
  return "tcp";
}

ParseOutcome parse_command_line(int argc, const char* const* argv) {
  // `ringside hosts FLAGS...`: the same flags, then print the client alias lines.
  const bool hosts = argc >= 2 && std::string_view(argv[1]) == "hosts";
  std::vector<const char*> args(argv, argv + argc);
  if (hosts) args.erase(args.begin() + 1);
  argc = static_cast<int>(args.size());
  argv = args.data();

  ParseOutcome outcome;
  auto exit_with = [&outcome](int code, std::string message) {
    outcome.action = ParseOutcome::Action::kExit;
    outcome.exit_code = code;
    outcome.message = std::move(message);
    outcome.config = Config{};
    return outcome;
  };

  try {
    RawOptions raw;
    po::options_description shared(kHelpWidth, kHelpWidth / 2);
    describe_options(raw, shared);
    po::options_description general("General", kHelpWidth, kHelpWidth / 2);
    general.add_options()  //
        ("config", po::value(&raw.config_file)->value_name("FILE"),
         "INI file with the flags' names as keys (ingress = ...), no [sections], every key with "
         "a value (tls13-only = true); repeat a key for a repeatable flag; '#' starts a comment; "
         "relative paths (cert, key, trust, ca-cert, ca-key, cert-dir, access-log, upstream "
         "file:) are relative to the file's folder. Flags override the file; a repeatable flag "
         "given on the command line replaces all of the file's values for it")  //
        ("help,h", "print this help")                                           //
        ("version", "print the version");
    // Words that are not flags land here, so the error can quote the first of them.
    po::options_description hidden;
    hidden.add_options()("positional-argument", po::value<std::vector<std::string>>());
    po::positional_options_description positional;
    positional.add("positional-argument", -1);
    po::options_description command_line;
    command_line.add(shared).add(general).add(hidden);

    po::variables_map vm;
    std::string where;
    try {
      // No abbreviations: a flag is spelled in full, so adding a flag never changes
      // what an existing command line means.
      const int style =
          po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
      po::store(po::command_line_parser(argc, const_cast<char**>(argv))
                    .options(command_line)
                    .style(style)
                    .positional(positional)
                    .run(),
                vm);
      if (vm.count("help")) return exit_with(0, help_text(shared, general));
      if (vm.count("version")) {
        return exit_with(0, "ringside " RINGSIDE_VERSION " (wolfSSL " LIBWOLFSSL_VERSION_STRING
                            ", liburing " RINGSIDE_LIBURING_VERSION ")\n");
      }
      if (vm.count("positional-argument")) {
        const auto& words = vm["positional-argument"].as<std::vector<std::string>>();
        return exit_with(2, "ringside: unexpected argument '" + words.front() +
                                "' (flags start with --; see --help)");
      }
      if (vm.count("config")) {
        const std::string path = vm["config"].as<std::string>();
        where = "--config '" + path + "': ";
        std::ifstream file(path);
        if (!file) {
          return exit_with(2, "ringside: " + where + "cannot read: " + std::strerror(errno));
        }
        std::ostringstream text;
        text << file.rdbuf();
        if (file.bad()) {
          return exit_with(2, "ringside: " + where + "read error: " + std::strerror(errno));
        }
        if (std::string problem = check_config_lines(text.str()); !problem.empty()) {
          return exit_with(2, "ringside: " + where + problem);
        }
        std::istringstream in(text.str());
        po::parsed_options parsed = po::parse_config_file(in, shared, /*allow_unregistered=*/false);
        resolve_relative_paths(parsed, path);
        po::store(parsed, vm);
        where.clear();
      }
      po::notify(vm);
    } catch (const po::error& e) {
      return exit_with(2, describe_boost_error(e, where));
    }

    build_config(raw, vm, outcome.config);
    if (hosts) return exit_with(0, render_hosts(outcome.config));
    return outcome;
  } catch (const ConfigProblem& problem) {
    return exit_with(2, problem.message);
  } catch (const std::exception& e) {
    return exit_with(2, std::string("ringside: ") + e.what());
  } catch (...) {
    return exit_with(2, "ringside: unexpected error while reading the command line");
  }
}

}  // namespace ringside
