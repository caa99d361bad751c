// The settings of ringside's HTTP/1.1 proxy (listeners with protocol=http): plain data,
// filled by the command line (src/config/command_line.cc) and read by the HTTP pieces
// (http_proxy.h, http_route.h, access_log.h). docs/http-proxy.md explains each choice.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ringside/address.h"

namespace ringside::http {

// The headers the proxy adds; each one can be switched off by its own flag.
struct HeaderOptions {
  bool request_id = true;             // x-request-id when absent (--no-request-id)
  bool forwarded = true;              // ingress: x-forwarded-for/-proto (--no-forwarded-headers)
  bool server = true;                 // server: ringside (--no-server-header)
  bool upstream_service_time = true;  // x-upstream-service-time (--no-upstream-service-time)
  // ingress: x-forwarded-client-cert with the verified client identity; a value the client
  // sent is always removed (--no-forwarded-client-cert).
  bool client_cert = true;
};

// One --route HOST[/PREFIX]=SERVICE[,retries=N].
struct Route {
  // Lower case, without port: "orders.ns", a wildcard "*.example.com", or "*" (any host).
  std::string host;
  std::string path_prefix = "/";  // matched as a plain byte prefix of the path
  std::string service;
  std::optional<unsigned> retries;  // per-route retry limit (retries=0 opts out); else global
};

enum class AccessLogFormat : uint8_t { kText, kJson };

struct HttpConfig {
  HeaderOptions headers;
  // 0 disables each timeout.
  std::chrono::milliseconds request_timeout{15'000};         // whole exchange; 504 when it fires
  std::chrono::milliseconds idle_timeout{300'000};           // keep-alive connection, no request
  std::chrono::milliseconds request_header_timeout{10'000};  // first byte to end of head; 408
  unsigned retries = 2;  // per request, on connect failure, reset before response, 503
  // gRPC calls: the grpc-status codes retried (bit n: code n; --grpc-retry-on), and the
  // time one attempt may take before it is abandoned and retried (0: no limit).
  uint32_t grpc_retry_on = 1u << 14;  // UNAVAILABLE
  std::chrono::milliseconds grpc_per_try_timeout{0};
  std::vector<Route> routes;
  // Ingress: clients whose x-forwarded-proto is kept (--trusted-downstream), typically the
  // subnets of a load balancer that terminated the client's connection.
  std::vector<IpRange> trusted_downstreams;
  std::string access_log;  // "" off, "-" stdout, else a file path (appended to)
  AccessLogFormat access_log_format = AccessLogFormat::kText;
  bool log_query = false;  // keep the query string in logged paths
};

}  // namespace ringside::http
