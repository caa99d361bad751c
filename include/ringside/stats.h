// Statistics: every counter is written by exactly one thread (its owner: a worker for
// the data path, the control thread for certificates) and read by the admin thread.
// Writes are a relaxed load plus a relaxed store, never an atomic read-modify-write, so
// the per-connection path stays free of locked instructions.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace ringside {

class Counter {
 public:
  void add(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void add(int64_t n) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void inc() { add(1); }
  void dec() { add(-1); }
  void set(int64_t n) { v_.store(n, std::memory_order_relaxed); }
  int64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Per listener, per worker. X(field, metric, kind, help): kind is counter or gauge. The
// admin server renders each as ringside_listener_<metric>{listener="..."} summed over
// workers. Metric names follow Prometheus conventions (counters end in _total, units are
// base units before the suffix, checked by `promtool check metrics` in the tests); the C++
// field keeps its short name.
#define RINGSIDE_LISTENER_STATS(X)                                                                \
  X(cx_total, cx_total, counter, "Downstream connections accepted")                               \
  X(cx_active, cx_active, gauge, "Downstream connections open now")                               \
  X(downstream_bytes_rx, downstream_rx_bytes_total, counter,                                      \
    "Bytes received from downstream (as on the wire)")                                            \
  X(downstream_bytes_tx, downstream_tx_bytes_total, counter,                                      \
    "Bytes sent to downstream (as on the wire)")                                                  \
  X(upstream_bytes_rx, upstream_rx_bytes_total, counter,                                          \
    "Bytes received from upstream (as on the wire)")                                              \
  X(upstream_bytes_tx, upstream_tx_bytes_total, counter,                                          \
    "Bytes sent to upstream (as on the wire)")                                                    \
  X(tls_handshake_success, tls_handshake_success_total, counter, "TLS handshakes completed")      \
  X(tls_handshake_failure, tls_handshake_failure_total, counter,                                  \
    "TLS handshakes failed (not counting clients that closed before a byte: health checks; ClientTLSNegotiationErrorCount on an ingress)")           \
  X(tls_verify_failure, tls_verify_failure_total, counter,                                        \
    "Peer certificates rejected (chain, expiry, SAN)")                                            \
  X(tls_closed_before_hello_total, tls_closed_before_hello_total, counter,                        \
    "Connections closed by the client before it sent a byte (TCP health checks)")                 \
  X(plaintext_cx_total, plaintext_cx_total, counter,                                              \
    "Connections a tls=permissive ingress served in plaintext")                                   \
  X(cx_no_certificate, cx_no_certificate_total, counter,                                          \
    "Connections closed at once: no certificate published yet (the CA has not answered)")         \
  X(upstream_cx_total, upstream_cx_total, counter, "Upstream connections opened")                 \
  X(upstream_cx_connect_fail, upstream_cx_connect_fail_total, counter,                            \
    "Upstream connects refused, unreachable or timed out")                                        \
  X(upstream_cx_active, upstream_cx_active, gauge, "Upstream connections open now")               \
  X(timeout_connect, timeout_connect_total, counter, "Connections closed by the connect timeout") \
  X(timeout_handshake, timeout_handshake_total, counter,                                          \
    "Connections closed by the handshake timeout")                                                \
  X(timeout_idle, timeout_idle_total, counter, "Connections closed by the idle timeout")          \
  X(cx_reset, cx_reset_total, counter, "Connections ended by a reset or socket error")            \
  X(cx_drained, cx_drained_total, counter, "Connections closed because the drain timeout expired") \
  X(h2_cx_total, http2_cx_total, counter, "Downstream connections that spoke HTTP/2")             \
  X(h2_cx_active, http2_cx_active, gauge, "Downstream HTTP/2 connections open now")               \
  X(h2_streams_active, http2_streams_active, gauge, "Downstream HTTP/2 streams open now")         \
  X(h2_resets_sent, http2_resets_sent_total, counter, "HTTP/2 RST_STREAM frames sent downstream") \
  X(h2_resets_received, http2_resets_received_total, counter,                                     \
    "HTTP/2 RST_STREAM frames received from downstream")                                          \
  X(h2_goaways_sent, http2_goaways_sent_total, counter, "HTTP/2 GOAWAY frames sent downstream")   \
  X(h2_goaways_received, http2_goaways_received_total, counter,                                   \
    "HTTP/2 GOAWAY frames received from downstream")                                              \
  X(h2_refused_streams, http2_refused_streams_total, counter,                                     \
    "HTTP/2 streams refused beyond --h2-max-concurrent-streams")                                  \
  X(h2_protocol_errors, http2_protocol_errors_total, counter,                                     \
    "HTTP/2 malformed requests, invalid frames and header lists over the limits")                 \
  X(h2_abuse_closed, http2_abuse_closed_total, counter,                                           \
    "HTTP/2 connections closed for abuse (reset, ping, settings, CONTINUATION floods, glitches)") \
  X(h2_upstream_cx_active, http2_upstream_cx_active, gauge,                                       \
    "Upstream connections speaking HTTP/2 open now")                                              \
  X(h2_upstream_streams_active, http2_upstream_streams_active, gauge,                             \
    "Streams open now on upstream HTTP/2 connections")                                            \
  X(h2_upstream_resets_sent, http2_upstream_resets_sent_total, counter,                           \
    "RST_STREAM frames sent upstream (cancelled streams)")                                        \
  X(h2_upstream_resets_received, http2_upstream_resets_received_total, counter,                   \
    "RST_STREAM frames received from upstream (REFUSED_STREAM included)")                          \
  X(h2_upstream_goaways_received, http2_upstream_goaways_received_total, counter,                 \
    "GOAWAY frames received from upstream HTTP/2 connections")                                     \
  X(authz_cx_allowed, authz_connections_allowed_total, counter,                                   \
    "Connections whose client identity the listener's allow= admitted")                            \
  X(authz_cx_denied, authz_connections_denied_total, counter,                                     \
    "Connections refused in the handshake: client identity not in allow=")                         \
  X(authz_cx_would_deny, authz_connections_would_deny_total, counter,                             \
    "authz=audit: connections allow= would have refused, let through")                             \
  X(authz_rq_allowed, authz_requests_allowed_total, counter,                                      \
    "Requests an --authz-rule matched and allowed")                                                \
  X(authz_rq_denied, authz_requests_denied_total, counter,                                        \
    "Requests an --authz-rule denied (403, or PERMISSION_DENIED to a gRPC call)")                  \
  X(authz_rq_would_deny, authz_requests_would_deny_total, counter,                                \
    "authz=audit: requests an --authz-rule would have denied, let through")

struct ListenerStats {
#define RINGSIDE_DECLARE_STAT(field, metric, kind, help) kind##_t field;
  using counter_t = Counter;
  using gauge_t = Gauge;
  RINGSIDE_LISTENER_STATS(RINGSIDE_DECLARE_STAT)
#undef RINGSIDE_DECLARE_STAT
};

// Per worker: process-wide counters of the data path. X(field, metric, kind, help), rendered
// as ringside_worker_<metric>{worker="..."}.
#define RINGSIDE_WORKER_STATS(X)                              \
  X(accept_errors, accept_errors_total, counter,              \
    "accept() failures (e.g. out of file descriptors)")       \
  X(accept_paused, accept_paused_total, counter,              \
    "Times accepting was paused after a descriptor shortage") \
  X(buffer_exhausted, buffer_exhausted_total, counter,        \
    "Receives that found the provided-buffer ring empty")     \
  X(loop_iterations, loop_iterations_total, counter, "Event loop turns")

struct WorkerStats {
#define RINGSIDE_DECLARE_STAT(field, metric, kind, help) kind##_t field;
  using counter_t = Counter;
  using gauge_t = Gauge;
  RINGSIDE_WORKER_STATS(RINGSIDE_DECLARE_STAT)
#undef RINGSIDE_DECLARE_STAT
};

// Everything the admin server reads: stats[w] belongs to worker w, listeners[w][l] to
// worker w's copy of listener l. Sized once at start-up, never resized.
struct StatsRegistry {
  std::vector<std::string> listener_names;  // e.g. "ingress_127.0.0.1:15443"
  std::vector<WorkerStats> workers;
  std::vector<std::vector<ListenerStats>> listeners;  // [worker][listener]

  StatsRegistry(unsigned worker_count, std::vector<std::string> names)
      : listener_names(std::move(names)), workers(worker_count), listeners(worker_count) {
    for (auto& per_worker : listeners)
      per_worker = std::vector<ListenerStats>(listener_names.size());
  }
};

}  // namespace ringside
