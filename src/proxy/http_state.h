// The HTTP/1.1 state of a connection (listeners with protocol=http). A downstream
// connection (ConnKind::kHttpDown) carries its request parser and the exchange in
// progress; each exchange borrows an upstream connection (ConnKind::kHttpUp), a Connection
// object of its own, from the worker's pool or a new one. docs/http-proxy.md describes the
// life cycle.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proxy/connection.h"
#include "ringside/buffer.h"
#include "ringside/grpc_stats.h"
#include "ringside/http.h"
#include "ringside/http2_fields.h"
#include "ringside/http_proxy.h"
#include "ringside/http_route.h"

namespace ringside::proxy {

struct Cluster;
struct H2Up;  // proxy/h2_state.h

enum class DownPhase : uint8_t {
  kIdle,       // between requests (keep-alive): the idle timeout runs
  kHead,       // bytes of a request head arrived: the request-header timeout runs
  kExchange,   // a request is being forwarded and/or its response relayed
  kTunnel,     // after a 101 (Upgrade): bytes flow both ways unparsed
  kLingering,  // the response is out and the write side shut: read and discard until EOF
};

// One request and its response: the unit the upstream side works for. An upstream
// connection (HttpUp::owner) points at the exchange it serves, never at a client
// connection; the exchange knows its client connection (`down`) and, on it, its stream.
// Today an HTTP/1.1 connection carries one exchange at a time (HttpDown owns it) and the
// stream is always 0; docs/architecture.md (HTTP) says what is left before HTTP/2.
struct Exchange {
  Connection* down = nullptr;  // the client connection (kHttpDown) it answers
  uint32_t stream = 0;         // its stream on `down`: 0 for HTTP/1.1
  Connection* up = nullptr;    // the upstream connection serving it (kHttpUp), or null
  int32_t up_stream = 0;       // its stream on `up` when that speaks HTTP/2; 0 otherwise
  size_t up_unconsumed = 0;    // HTTP/2 upstream: response bytes not yet drained downstream
  bool up_ended = false;       // HTTP/2 upstream: END_STREAM was sent on up_stream
  bool active = false;         // from its request (or refusal) to its end: stats, log
  const Cluster* cluster = nullptr;
  const http::Route* route = nullptr;
  uint32_t pool = 0;  // the worker's pool index for (listener, cluster)
  bool request_complete = false;
  bool response_started = false;   // response head bytes were queued to the client
  bool response_complete = false;  // ... and all of it (the request may still be arriving)
  bool head_sent = false;          // the request head went to the current upstream
  bool upstream_keep_alive = true;
  bool body_sent = false;  // request body bytes went to an upstream: no replay
  bool client_keep_alive = true;
  bool http10 = false;
  bool upgrade = false;      // the request asked for a protocol switch (Upgrade)
  bool tunnel = false;       // ... and got it: raw bytes both ways until either side closes
  bool te_trailers = false;  // the client said "te: trailers" (kept for an HTTP/2 upstream)
  bool plan_close = false;
  bool grpc = false;              // content-type application/grpc: local replies are Trailers-Only
  int8_t grpc_status = -1;        // the call's grpc-status as the client got it (-1: none seen)
  uint64_t grpc_deadline_ms = 0;  // from grpc-timeout, on the worker's clock (0: none)
  // Balancing: the endpoint this attempt counts as outstanding on, from its pick to its
  // response head (Worker::http_lb_begin/http_lb_end), and when it was picked.
  cluster::Endpoint* lb_endpoint = nullptr;
  uint64_t lb_start_us = 0;
  int64_t lb_load = 0;  // requests in flight to lb_endpoint on this worker at the pick
  // gRPC retries: the current attempt's start (the per-try timeout), and a response head
  // held back until its first DATA or its end, so that a failing call can still be retried
  // (Worker::http_grpc_*).
  uint64_t try_start_ms = 0;
  // gRPC statistics of the call's method (null: not a gRPC call, or no HTTP service), and
  // its messages counted each way.
  grpc::MethodStats* grpc_method = nullptr;
  grpc::MessageCounter grpc_in, grpc_out;
  bool head_held = false;
  uint16_t held_status = 0;
  http2::OwnedFields held_fields;
  http::RequestKind kind = http::RequestKind::kOther;
  http::BodyFraming framing = http::BodyFraming::kNone;
  http::Framing request_framing = http::Framing::kNone;
  unsigned retries = 0;
  unsigned max_retries = 0;
  uint16_t status = 0;
  uint32_t flags = 0;  // access log response flags
  std::string_view details;
  uint64_t start_ms = 0;
  uint64_t sent_ms = 0;  // request head handed to the upstream connection
  uint64_t request_complete_ms = 0;
  int64_t service_time_ms = -1;
  uint64_t bytes_received = 0;  // request body bytes
  uint64_t bytes_sent = 0;      // response body bytes
  std::string head;             // the encoded request head (kept for a replay)
  ChunkQueue pending;           // request body (payload) waiting for the upstream connection
  std::string replay;           // the payload sent so far, while small (for a resend)
  http2::OwnedFields request_trailers;  // the request's trailers, once it ended
  bool replay_overflow = false;
  std::string method, path, authority, user_agent, request_id;
  std::string upstream_address;
  // Authorization (--authz-rule): the decision of the rule the request matched, its index
  // (-1: none matched) and, when denied, the reason (the 403 body and the log's details).
  enum class Authz : uint8_t { kNone, kAllowed, kDenied, kWouldDeny };
  Authz authz = Authz::kNone;
  int16_t authz_rule = -1;
  std::string authz_reason;
};

// "10.0.0.1" (or "::1"), the X-Forwarded-For form; empty for an unknown peer.
void format_peer_ip(const PeerAddress& peer, std::string& ip);
// "10.0.0.1:5000" (or "[::1]:5000"), the access log's form; empty for an unknown peer.
std::string peer_address(const PeerAddress& peer);
// peer_address, or "the local app" for an unknown peer (logs).
std::string peer_label(const PeerAddress& peer);

// Back to a fresh exchange's state (keeps buffers' capacity).
void reset_exchange(Exchange& ex);

// A downstream HTTP/1.1 connection's state while it has a request (or bytes of one) in
// progress. An idle keep-alive connection holds none: Worker::http_release_idle gives it
// back to the worker's HttpDownPool at the end of the turn in which the connection went
// idle with nothing buffered, and Worker::http_down takes one when bytes arrive. Its
// exchange and parser stay attached while pooled, so steady traffic allocates nothing.
struct HttpDown {
  explicit HttpDown(const http::Limits& limits) : limits_(&limits) {}
  http::RequestParser& parser() {
    if (!parser_) parser_ = std::make_unique<http::RequestParser>(*limits_);
    return *parser_;
  }
  Exchange& ex() {
    if (!ex_) ex_ = std::make_unique<Exchange>();
    return *ex_;
  }
  // The exchange, or null when none was made yet.
  Exchange* ex_if_any() { return ex_.get(); }
  // An exchange is in progress on the connection.
  bool exchange_active() const { return ex_ && ex_->active; }
  // Idle, nothing half-read and nothing to send: the connection may give this back.
  bool idle() const {
    return phase == DownPhase::kIdle && !exchange_active() && !parsing && !dirty && !client_eof &&
           backlog.empty() && staged.empty() && (!parser_ || parser_->between_messages());
  }
  // Back to a fresh connection's state, for the pool: keeps the exchange and parser
  // objects, drops what a large request left in them.
  void recycle();

  DownPhase phase = DownPhase::kIdle;
  bool parsing = false;      // inside http_parse_input (no re-entry)
  bool dirty = false;        // in the worker's list: staged plaintext, or queued bytes not yet sent
  bool close_after = false;  // close once the current response is out
  bool client_eof = false;
  uint64_t head_start_ms = 0;
  uint64_t idle_since_ms = 0;
  std::string backlog;  // plaintext received while an exchange was in progress
  std::string staged;   // plaintext for the client, encrypted at the end of the turn
  // Staging buffer a pooled state keeps, and the first reservation of an empty one.
  static constexpr size_t kKeptStaging = 2048;
  std::string client_ip;  // X-Forwarded-For's form of the peer (format_peer_ip)

 private:
  const http::Limits* limits_;
  std::unique_ptr<http::RequestParser> parser_;
  std::unique_ptr<Exchange> ex_;
};

// Per worker: HttpDown objects of connections that went idle (at most kMax).
class HttpDownPool {
 public:
  explicit HttpDownPool(const http::Limits& limits) : limits_(&limits) {}
  std::unique_ptr<HttpDown> take();
  void give(std::unique_ptr<HttpDown> h);  // h must be idle()
  size_t size() const { return free_.size(); }

  static constexpr size_t kMax = 256;

 private:
  const http::Limits* limits_;
  std::vector<std::unique_ptr<HttpDown>> free_;
};

struct HttpUp {
  explicit HttpUp(const http::Limits& limits) : parser(limits) {}
  ~HttpUp();
  http::ResponseParser parser;
  Exchange* owner = nullptr;  // the exchange it serves; null while pooled, or once it is gone
  // HTTP/2 (h2.cc's upstream half): set once the connection speaks it; then `owner` is
  // unused and the session's streams carry the exchanges.
  std::unique_ptr<H2Up> h2;
  // Connecting to a peer that may speak HTTP/2 (h2c, or ALPN offering h2): exchanges that
  // wait for it beside the owner, to share it if it does.
  bool h2_capable = false;
  std::vector<Exchange*> waiters;
  const Cluster* cluster = nullptr;
  uint32_t pool = 0;  // its endpoint is the Connection's (held, released with it)
  uint8_t attempt = 0;
  bool ready = false;      // connected, and the TLS handshake done (egress)
  bool pooled = false;     // in the worker's idle pool
  bool reused = false;     // served an exchange before the current one
  bool got_bytes = false;  // response bytes arrived for the current exchange
  bool dirty = false;
  std::string staged;  // plaintext for the upstream (TLS), encrypted at the end of the turn
  uint64_t idle_since_ms = 0;
};

}  // namespace ringside::proxy
