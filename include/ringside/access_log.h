// The HTTP access log: one line per request, as text (Envoy-like) or JSON.
//
// Workers never block on it: a worker formats the line itself into a scratch string and
// copies it into its own single-producer/single-consumer byte ring; a full ring drops the
// line and counts it. One background thread ("accesslog") drains every ring to the file
// or to stdout every flush interval. No lock, no system call, no allocation (once warm) on
// the worker side.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ringside/http_config.h"
#include "ringside/http_proxy.h"
#include "ringside/result.h"
#include "ringside/stats.h"

namespace ringside::http {

// Why a request did not end with a plain upstream response (Envoy's response flags).
enum ResponseFlag : uint32_t {
  kFlagNoHealthyUpstream = 1u << 0,                // UH
  kFlagUpstreamConnectFailure = 1u << 1,           // UF
  kFlagUpstreamRetryLimitExceeded = 1u << 2,       // URX
  kFlagUpstreamRequestTimeout = 1u << 3,           // UT
  kFlagUpstreamConnectionTermination = 1u << 4,    // UC
  kFlagUpstreamProtocolError = 1u << 5,            // UPE
  kFlagDownstreamConnectionTermination = 1u << 6,  // DC
  kFlagDownstreamProtocolError = 1u << 7,          // DPE
  kFlagStreamIdleTimeout = 1u << 8,                // SI (request header timeout, idle timeout)
  kFlagLocalReset = 1u << 9,                       // LR
  kFlagRateLimited = 1u << 10,                     // RL
  kFlagNoRoute = 1u << 11,                         // NR
};

// Appends "UF,URX" (in the order above) or "-" when flags is 0.
void append_response_flags(uint32_t flags, std::string& out);

// The flag a proxy-generated response carries (0 for none).
uint32_t response_flag_for(LocalCause cause);

// One request as the log shows it. The views must stay valid during the format call only.
struct AccessLogEntry {
  std::chrono::system_clock::time_point start_time;
  std::string_view method;
  std::string_view path;  // the request-target as received; the query is cut unless log_query
  std::string_view protocol = "HTTP/1.1";
  uint16_t status = 0;  // 0: no response was sent
  uint32_t response_flags = 0;
  std::string_view details;     // why the proxy answered itself ("upstream connect timeout")
  uint64_t bytes_received = 0;  // request body bytes from the client
  uint64_t bytes_sent = 0;      // response body bytes to the client
  uint64_t duration_ms = 0;     // first request byte to last response byte
  int64_t upstream_service_time_ms = -1;  // negative: no upstream response
  std::string_view upstream_address;      // "10.0.0.7:15443", or empty
  std::string_view upstream_service;
  uint32_t retry_count = 0;
  std::string_view request_id;
  std::string_view authority;
  std::string_view user_agent;
  std::string_view listener;            // "egress_127.0.0.1:15080"
  std::string_view downstream_address;  // the client, "10.0.0.9:51234"
  int grpc_status = -1;                 // a gRPC call's grpc-status; negative: none
  // Ingress: 1 the client came over TLS, 0 in plaintext (tls=permissive); -1 egress.
  int downstream_tls = -1;
  // Ingress with a verified client certificate: its identity (authz::describe); else empty.
  std::string_view peer_identity;
  // The --authz-rule decision: "allowed", "denied", "would_deny" (audit); empty: no rule
  // matched (or none applies).
  std::string_view authz;
};

// The Envoy-like default text line:
//   [2024-05-01T12:00:00.123Z] "GET /path HTTP/1.1" 200 - 0 1234 5 3 "request-id"
//   "authority" "user-agent" "10.0.0.7:15443" orders.ns 0 egress_127.0.0.1:15080
//   10.0.0.9:51234 "details" grpc-status tls|plaintext "peer-identity" authz-decision
// (one line, ending in '\n'): quoted fields escape '"', '\' and every byte outside
// printable ASCII as \xNN, so a hostile value cannot forge a line; empty values are "-".
void format_access_log_text(const AccessLogEntry& entry, bool log_query, std::string& out);

// One JSON object per line, keys in a fixed order; strings escaped per RFC 8259, bytes
// outside printable ASCII as \u00NN (so the line is valid JSON even for non-UTF-8 input).
// upstream_service_time_ms is null when unknown; empty strings are null too.
void format_access_log_json(const AccessLogEntry& entry, bool log_query, std::string& out);

// Appends s as the inside of a JSON string (no quotes).
void append_json_escaped(std::string_view s, std::string& out);

// "2024-05-01T12:00:00.123Z": computed without gmtime (which takes glibc's tz lock).
void append_utc_timestamp(std::chrono::system_clock::time_point t, std::string& out);

// A single-producer/single-consumer ring of bytes holding whole lines: the producer (a
// worker) publishes a line only once it is completely copied, so the consumer always sees
// whole lines. Producer and consumer indices live on separate cache lines.
class AccessLogRing {
 public:
  // capacity is rounded up to a power of two.
  explicit AccessLogRing(size_t capacity);

  // Producer: copies line in, or drops it (and counts) when it does not fit.
  bool push(std::string_view line);
  // Consumer: the readable bytes as at most two contiguous pieces; then release(n).
  struct Readable {
    std::string_view first, second;
    size_t size() const { return first.size() + second.size(); }
  };
  Readable readable() const;
  void release(size_t n);

  size_t capacity() const { return mask_ + 1; }
  uint64_t dropped() const { return dropped_.get(); }  // lines, written by the producer
  uint64_t pushed() const { return pushed_.get(); }    // lines

 private:
  std::unique_ptr<char[]> data_;
  size_t mask_;
  alignas(64) std::atomic<uint64_t> head_{0};  // written by the producer
  Counter dropped_;
  Counter pushed_;
  alignas(64) std::atomic<uint64_t> tail_{0};  // written by the consumer
};

// A worker's handle: formats entries in the configured format into its ring.
class AccessLogger {
 public:
  AccessLogger(AccessLogRing& ring, AccessLogFormat format, bool log_query)
      : ring_(&ring), format_(format), log_query_(log_query) {}
  // Never blocks; false when the line was dropped.
  bool log(const AccessLogEntry& entry);

 private:
  AccessLogRing* ring_;
  AccessLogFormat format_;
  bool log_query_;
  std::string scratch_;
};

// Owns one ring per worker and the thread that writes them out.
class AccessLogWriter {
 public:
  struct Options {
    size_t ring_bytes = 1 << 20;  // per worker
    std::chrono::milliseconds flush_interval{100};
  };

  // path: a file (opened O_APPEND, created 0644) or "-" for stdout. Starts the thread.
  static Result<std::unique_ptr<AccessLogWriter>> open(const std::string& path, unsigned workers,
                                                       const Options& options, std::string* detail);

  AccessLogRing& ring(unsigned worker) { return *rings_[worker]; }
  unsigned workers() const { return static_cast<unsigned>(rings_.size()); }

  // Reopens the file on the next turn (after logrotate moved it); only an atomic store,
  // so a SIGHUP handler may call it.
  void request_reopen() { reopen_.store(true, std::memory_order_relaxed); }
  // Writes out what the rings hold now, without waiting for the interval (tests, drain).
  void flush();
  // Drains everything, stops and joins the thread. Idempotent.
  void stop();
  ~AccessLogWriter();

  uint64_t lines_dropped() const;  // summed over the rings
  uint64_t bytes_written() const { return bytes_written_.load(std::memory_order_relaxed); }
  uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }

  AccessLogWriter(const AccessLogWriter&) = delete;
  AccessLogWriter& operator=(const AccessLogWriter&) = delete;

 private:
  AccessLogWriter(std::string path, int fd, unsigned workers, const Options& options);
  void run();
  void drain_all();
  void reopen_file();

  std::string path_;
  int fd_;
  bool owns_fd_;
  Options options_;
  std::vector<std::unique_ptr<AccessLogRing>> rings_;
  std::atomic<bool> reopen_{false};
  std::atomic<uint64_t> bytes_written_{0};
  std::atomic<uint64_t> write_errors_{0};
  std::mutex drain_mutex_;  // between the thread and flush(); never taken by a worker
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ringside::http
