// The load generator proper. Each thread runs its own epoll loop over its share of the
// connections (wrk's architecture): non-blocking sockets, level-triggered, one request
// in flight per HTTP/1.1 connection; with --h2, up to `streams` requests in flight per
// connection, one per HTTP/2 stream (h2load's -m).
//  - closed loop (rate == 0): a connection sends its next request when the previous
//    response has ended; latency is measured from the actual send.
//  - open loop (rate > 0): every connection has a fixed schedule of intended send times
//    (rate / connections per second, staggered across connections); a request that
//    could not be sent on time because the previous one was late is sent as soon as
//    possible, and its latency is measured from its intended time. This is wrk2's
//    correction of coordinated omission: a stall shows in the percentiles as the
//    requests that were due during it, not as one slow sample. With --h2 the schedule is
//    the connection's as well; a due request waits for a free stream, its latency still
//    counting from its intended time.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "common.h"
#include "h2_link.h"
#include "histogram.h"
#include "tls_link.h"
#include "url.h"

namespace ringside::bench {

enum class Mode : uint8_t {
  kHttp,       // keep-alive HTTP/1.1 requests
  kHandshake,  // a new connection (and TLS handshake) per request
  kTcp,        // raw stream throughput: writes of write_size, replies read and discarded
};

struct ClientOptions {
  Url url;
  Endpoint endpoint;
  unsigned connections = 10;
  unsigned threads = 1;
  uint64_t duration_ns = 10'000'000'000;
  double rate = 0;  // requests per second over all connections; 0 = closed loop
  Mode mode = Mode::kHttp;
  size_t write_size = 16 * 1024;
  std::string method = "GET";
  std::vector<std::string> headers;  // "Name: value"
  uint64_t timeout_ns = 5'000'000'000;
  TlsClient* tls = nullptr;  // required for https:// and tls://
  bool resume = false;
  bool live_progress = false;  // one line per second on stdout
  // --mode http over HTTP/2: h2 chosen with ALPN for https://, h2c with prior knowledge
  // for http://.
  bool http2 = false;
  unsigned streams = 1;     // requests in flight per HTTP/2 connection (-m)
  std::string grpc_path;    // --grpc: unary calls to /package.Service/Method (needs http2)
  size_t message_size = 0;  // --grpc: payload bytes of each request message
};

struct ErrorCounts {
  uint64_t connect = 0;  // connect failed (refused, unreachable, ...)
  uint64_t tls = 0;      // handshake or record failure
  uint64_t timeout = 0;  // no response (or no connection) within the timeout
  uint64_t read = 0;     // reset, malformed response, or closed before the response ended
  uint64_t write = 0;    // a send failed
  uint64_t status = 0;   // a response with a status outside 2xx (--grpc: other than 200)
  uint64_t grpc = 0;     // --grpc: HTTP 200 but grpc-status other than 0 (or none)

  uint64_t total() const { return connect + tls + timeout + read + write + status + grpc; }
  void merge(const ErrorCounts& other);
};

struct RunStats {
  uint64_t requests = 0;            // complete responses (any status)
  uint64_t bytes_read = 0;          // from sockets (ciphertext under TLS)
  uint64_t bytes_written = 0;       // to sockets
  uint64_t connections = 0;         // connections established
  uint64_t handshakes = 0;          // TLS handshakes completed
  uint64_t resumed = 0;             // of which resumed a session
  uint64_t payload_read = 0;        // --mode tcp: application bytes received
  uint64_t payload_written = 0;     // --mode tcp: application bytes sent
  uint64_t status_classes[6] = {};  // [1..5] = responses per status class 1xx..5xx
  // --grpc: calls answered with HTTP 200, by grpc_status_slot (0 = OK).
  uint64_t grpc_status[kGrpcStatusSlots] = {};
  ErrorCounts errors;
  LatencyHistogram latency;
  std::string first_error;  // the first error's description, e.g. "connect: refused"

  void merge(const RunStats& other);
};

struct RunResult {
  RunStats stats;
  double elapsed_s = 0;
  bool interrupted = false;  // stopped early by a signal
};

// The request bytes for options (request line, Host, user headers, blank line).
std::string build_request(const ClientOptions& options);

// The HTTP/2 request for options (--h2, --grpc): the head from the URL, the method and the
// user headers (Host becomes :authority), and for gRPC the framed message.
H2Request build_h2_request(const ClientOptions& options);

// One blocking connection attempt (and TLS handshake) before the run starts, so that
// an unreachable target, refused TLS or (--h2) a server that does not choose h2 with
// ALPN fails fast with one clear line in *error.
bool preflight(const ClientOptions& options, std::string* error);

// Runs the load for options.duration_ns or until *stop becomes true.
RunResult run_client(const ClientOptions& options, const std::atomic<bool>* stop);

}  // namespace ringside::bench
