// A worker: one thread, one io_uring, its own SO_REUSEPORT listeners, connections,
// timers and stats shard. A connection lives and dies on the worker that accepted it;
// nothing on the per-connection path takes a lock or an atomic read-modify-write.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/connection.h"
#include "proxy/h2_state.h"
#include "proxy/http_state.h"
#include "proxy/runtime.h"
#include "ringside/io.h"
#include "ringside/timer_wheel.h"

namespace ringside::proxy {

class Worker {
 public:
  // The ring is made by the worker's own thread at the start of run()
  // (IORING_SETUP_SINGLE_ISSUER ties a ring to the thread that creates it); tests pass
  // a ring (a FakeRing) through the second constructor.
  Worker(unsigned index, Runtime& runtime, RingOptions ring_options);
  Worker(unsigned index, Runtime& runtime, std::unique_ptr<IoRing> ring);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Opens this worker's listening sockets (start-up, before run()). detail names the
  // listener and the reason on failure.
  Result<void> open_listeners(std::string* detail);

  // The event loop; returns when stopped, or when draining and the last connection
  // has closed.
  void run();

  // run() in steps, for tests that drive a FakeRing: start() makes the ring (if none was
  // given) and arms the listeners; turn() is one loop iteration (submit, wait at most
  // max_wait_ms, handle completions and timers) and returns false when the loop ends.
  bool start();
  bool turn(int64_t max_wait_ms);
  // Tests: use fd as listener i's socket instead of opening one.
  void adopt_listener(size_t i, int fd) { listeners_[i].fd = fd; }
  int64_t live_connections() const { return live_; }
  // Tests: HTTP connection states waiting in the pool (given back by idle connections).
  size_t pooled_http_states() const { return http_idle_pool_.size(); }
  IoRing& ring() { return *ring_; }

  // The longest the loop sleeps, so commands and the quiescent epoch always move.
  static constexpr int64_t kMaxWaitMs = 250;

  // Control thread -> worker (thread-safe, wake the loop).
  // Stop accepting; let open connections finish.
  void request_drain();
  // Close everything now and return from run().
  void request_stop();

  // Written by the worker, read by the control thread.
  bool finished() const { return finished_.load(std::memory_order_acquire); }
  int64_t open_connections() const { return open_connections_.load(std::memory_order_relaxed); }
  // Quiescent-state counter: incremented (plain store) once per loop turn.
  uint64_t quiescent_epoch() const { return epoch_.load(std::memory_order_acquire); }

  unsigned index() const { return index_; }

 private:
  struct ListenerSocket {
    int fd = -1;
    bool accept_armed = false;
    OwnedTimer retry_timer;  // re-arms accept after a descriptor shortage
  };

  void wake();
  void handle(const Completion& completion);
  void on_accept(uint32_t listener, const Completion& completion);
  void on_listener_retry(uint32_t listener);
  void arm_accept(uint32_t listener);
  void close_listeners();
  void on_timer(TimerNode* node);
  void check_commands();
  void rearm_starved();

  // Connection life cycle (connection.cc).
  Connection* allocate(uint32_t listener);
  void release(Connection* c);
  Connection* lookup(const Token& token);
  void start_ingress(Connection* c);
  void start_plaintext_ingress(Connection* c);  // tls=permissive, first byte not TLS
  void start_connect(Connection* c);
  // Outlier detection: the outcome of c's connect (+ TLS handshake) to its endpoint.
  void report_upstream_connect(Connection* c, bool ok);
  // A TCP relay whose upstream reset during its TLS handshake: a failed connect.
  void report_reset_in_upstream_handshake(Connection* c);
  void on_connect(Connection* c, uint8_t attempt, const Completion& completion);
  void on_recv(Connection* c, Half& half, const Completion& completion);
  void on_send(Connection* c, Half& half, const Completion& completion);
  void process_input(Connection* c, Half& in, const uint8_t* data, size_t len);
  // Drives in's TLS handshake with the ciphertext just set as input; true when it is
  // complete and application data may be read.
  bool advance_handshake(Connection* c, Half& in);
  void on_handshake_done(Connection* c, Half& half);
  // Ingress with allow=: the connection's verified identity against the listener's
  // allow-list (audit: counted, let through). False when the connection was aborted.
  bool authorize_connection(Connection* c);
  void on_handshake_failed(Connection* c, Half& half);
  // TLS 1.3 ingress: keep what the handshake left queued (the NewSessionTicket) for the
  // first reply, or the end of this turn when no request is waiting for one.
  void hold_ticket(Connection* c, Half& half);
  void release_idle_ticket_holds();
  void on_eof(Connection* c, Half& in);
  void arm_recv(Connection* c, Half& half);
  void pause_recv(Connection* c, Half& half);
  void resume_recv(Connection* c, Half& half);
  // Egress: starts the TLS handshake with the upstream; false when it failed at once
  // (the connection is then being closed).
  // alpn: the ids this session offers instead of the context's ("http/1.1" for a request
  // that must not go over HTTP/2); empty: the context's. verify_uri: a URI SAN (SPIFFE
  // ID) the upstream must carry too; empty: none.
  bool start_upstream_tls(Connection* c, const std::string& sni, const std::string& verify_name,
                          std::string_view alpn = {}, std::string_view verify_uri = {});
  void flush(Connection* c, Half& half);
  void maybe_finish(Connection* c);
  void abort(Connection* c);
  void retire_if_idle(Connection* c);
  void release_retired();
  void schedule_timer(Connection* c, uint64_t deadline_ms);
  void connection_timer(Connection* c);
  uint64_t token(const Connection* c, const Half& half, OpCode op) const;

  // HTTP/1.1 (http.cc). Downstream side:
  void http_accept(Connection* c);
  // c's HTTP state, taken from the pool when c is idle and holds none.
  HttpDown& http_down(Connection* c);
  // Gives c's HTTP state back to the pool when it is idle with nothing pending.
  void http_release_idle(Connection* c);
  void http_input(Connection* c, Half& in, const uint8_t* data, size_t len);
  void http_plaintext(Connection* c, Half& in, const uint8_t* data, size_t len);
  void http_down_data(Connection* c, std::string_view data);
  void http_parse(Connection* c);
  size_t http_parse_input(Connection* c, std::string_view input);
  void http_begin_request(Connection* c);
  // The codec-neutral start of an exchange whose request head arrived (ex.down, .stream,
  // .active and .start_ms set): routing, the head for the upstream, stats, an upstream.
  void http_start_exchange(Exchange& ex, const http::RequestHead& head, std::string_view client_ip);
  // The --authz-rule of an ingress request: false when it was denied (answered 403, or
  // PERMISSION_DENIED to a gRPC call); audit mode counts, logs and lets it pass.
  bool http_authorize(Exchange& ex, const http::RequestHead& head);
  // Request body bytes for the upstream (re-framed as the head says); true when what
  // waits for the upstream is over --max-pending-bytes (stop reading the client).
  bool http_exchange_body(Exchange& ex, std::string_view body);
  // The request ended (with these trailers, for a chunked request upstream).
  void http_exchange_request_end(Exchange& ex, std::span<const http::Field> trailers);
  void http_request_body(Connection* c, std::string_view body);
  void http_request_complete(Connection* c);
  void http_request_error(Connection* c);
  void http_down_eof(Connection* c);
  void http_to_client(Connection* c, const void* data, size_t len);
  void http_stage(Connection* c, Half& half, std::string& staged, bool& dirty, const void* data,
                  size_t len);
  void http_commit(Connection* c);
  // An HTTP/1.1 connection's staged plaintext into its TLS session, not yet sent; false
  // when there was none, or the connection was aborted.
  bool http_seal_staged(Connection* c);
  void http_commit_dirty();
  void http_close_after_flush(Connection* c, bool clean = true);
  void http_arm_down_timer(Connection* c);
  void http_down_timer(Connection* c);
  // --request-timeout expired before the response started: 504, counted.
  // The earliest of the exchange's deadlines (per_try: with --grpc-per-try-timeout's); 0: none.
  uint64_t http_request_deadline(const Exchange& ex, bool per_try = true) const;
  // gRPC retries (docs/grpc.md): whether a call may be sent again now; a retry when fields
  // (a Trailers-Only head, or trailers) carry a grpc-status --grpc-retry-on names (true:
  // the exchange went to another attempt); a held response head sent at last.
  bool http_grpc_may_retry(const Exchange& ex) const;
  bool http_grpc_retry_on_status(Exchange& ex, std::span<const http::Field> fields);
  void http_grpc_release_head(Exchange& ex);
  // Balancing: the exchange's attempt counts as outstanding on endpoint from its pick to
  // its response head (sample: a latency sample for p2c-ewma) or its end.
  void http_lb_begin(Exchange& ex, cluster::Endpoint& endpoint);
  void http_lb_end(Exchange& ex, bool sample);
  void http_request_timed_out(Exchange& ex);
  // The HTTP/1.1 server codec's response side: what the exchange layer calls to answer
  // an exchange on its client connection (ex.down). The HTTP/2 server codec will offer
  // the same calls per stream.
  // The response head (a 1xx too; none to an HTTP/1.0 client); says how the body is
  // framed and whether the connection closes after it.
  // The server codec of an exchange's client connection: h1_* for stream 0, h2_* for an
  // HTTP/2 stream. The exchange layer answers through these only.
  http::ResponsePlan down_response_head(Exchange& ex, const http::ResponseHead& head);
  void down_body(Exchange& ex, std::string_view body);
  void down_end_body(Exchange& ex, std::span<const http::Field> trailers);
  void down_local_response(Exchange& ex, const http::LocalResponse& response);
  void down_end_response(Exchange& ex);
  void down_reset_response(Exchange& ex);
  http::ResponsePlan h1_send_response_head(Exchange& ex, const http::ResponseHead& head);
  void h1_send_body(Exchange& ex, std::string_view body);  // framed as ex.framing says
  void h1_end_body(Exchange& ex, std::span<const http::Field> trailers);
  void h1_send_local_response(Exchange& ex, const http::LocalResponse& response);
  // The exchange is over: close after what is queued, or wait for (parse) the next request.
  void h1_end_response(Exchange& ex);
  // The response cannot be completed: end the connection so the client sees the cut.
  void h1_reset_response(Exchange& ex);

  // Exchanges, whatever the codecs. A function taking an Exchange reaches its client
  // connection (ex.down) only for connection work: listener stats, back-pressure, timers.
  // c's exchange in progress, or one started for a request refused before its head was
  // complete (parse error, header timeout).
  Exchange& http_exchange_of(Connection* c);
  void http_local_reply(Exchange& ex, uint16_t status, std::string_view body, uint32_t flag,
                        bool force_close);
  void http_log(const Exchange& ex);
  void http_end_exchange(Exchange& ex);
  void http_finish_exchange(Exchange& ex);
  // Ends an exchange whose response cannot be completed (see http.cc).
  void http_cut(Exchange& ex);
  void http_acquire_upstream(Exchange& ex, bool fresh_only);
  // Sends the exchange again on another upstream connection: the retry is counted when
  // counted; replay puts the held body back in front of what is still to come.
  void http_retry(Exchange& ex, bool counted, bool replay, bool fresh_only);
  void http_send_request(Exchange& ex);
  // The response head from ex's upstream u; false when the exchange stopped reading u
  // (retried after a 503, or failed).
  bool http_response_head(Exchange& ex, Connection* u, const http::ResponseHead& head);
  // The exchange lost its upstream before its response was complete: retry, a local
  // reply, or a cut when the response had started.
  void http_exchange_failed(Exchange& ex, http::RetryReason reason, http::LocalCause cause);
  void http_release_upstream(Exchange& ex, bool reusable);

  // Upstream connections:
  void http_connect(Connection* u);
  void http_on_connect(Connection* u, uint8_t attempt, const Completion& completion);
  void http_upstream_ready(Connection* u);
  void http_to_upstream(Connection* u, const void* data, size_t len);
  void http_up_data(Connection* u, std::string_view data);
  void http_up_eof(Connection* u);
  // u failed (connect, TLS, reset, bad response): counted against its endpoint, closed,
  // and its exchange decides (http_exchange_failed).
  void http_upstream_failed(Connection* u, http::RetryReason reason, http::LocalCause cause);
  void http_up_timer(Connection* u);
  void http_on_sent(Connection* c, Half& half);
  void http_on_abort(Connection* c);
  void http_on_release(Connection* c);
  void http_drain();

  // HTTP/2 server codec (h2.cc): a downstream connection that speaks HTTP/2, one
  // exchange per stream. H2Down's session events come back through the h2_on_* calls.
  friend struct H2Down;
  static bool h2_preface(std::string_view first_bytes);
  void h2_start(Connection* c);
  void h2_down_data(Connection* c, std::string_view data);
  void h2_on_head(H2Down& h, int32_t id, const http2::Head& head);
  void h2_on_data(H2Down& h, int32_t id, std::span<const uint8_t> data);
  void h2_on_trailers(H2Down& h, int32_t id, std::span<const http2::Field> fields);
  void h2_on_end(H2Down& h, int32_t id);
  void h2_on_reset(H2Down& h, int32_t id, uint32_t code, bool sent_by_us);
  void h2_on_close(H2Down& h, int32_t id);
  void h2_on_connection_error(H2Down& h, const http2::ConnectionError& error);
  void h2_on_queue_drained(H2Down& h, int32_t id);
  // A stream refused before its exchange could start (bad head): a local response.
  void h2_refuse(Exchange& ex, uint16_t status, std::string_view reason);
  H2Stream* h2_stream(const Exchange& ex);
  void h2_mark_dirty(Connection* c);
  // Both codecs: the session's output for half, produced unless half has more than
  // --max-pending-bytes unsent, encrypted as one write (TLS) or queued. False when that
  // failed and c is being closed.
  bool h2_produce(Connection* c, Half& half, http2::Session& session, std::string& staged);
  void h2_commit(Connection* c);
  void h2_report(Connection* c);
  void h2_consume(Exchange& ex);
  void h2_arm_timer(Connection* c);
  void h2_timer(Connection* c);
  void h2_on_sent(Connection* c);
  void h2_on_abort(Connection* c);
  void h2_on_release(Connection* c);
  void h2_drain(Connection* c);
  // HTTP/2 client codec (h2_up.cc): upstream connections that speak HTTP/2, shared by the
  // exchanges of any client connection, one stream each. H2Up's events come back through
  // the h2up_on_* calls.
  friend struct H2Up;
  // Joins an HTTP/2 connection (or one coming up that may speak it) to endpoint with a
  // free stream; false when there is none.
  bool h2up_attach(Exchange& ex, cluster::Endpoint* endpoint, const TlsGeneration* current);
  void h2up_start(Connection* u);
  bool h2up_send_head(Exchange& ex);
  void h2up_send_data(Exchange& ex, std::string_view data);
  void h2up_end_request(Exchange& ex);
  void h2up_detach(Exchange& ex, bool clean);
  void h2up_mark_dirty(Connection* u);
  void h2up_commit(Connection* u);
  void h2up_report(Connection* u);  // its session's counters into the listener stats
  void h2up_consume(Exchange& ex);
  void h2up_data(Connection* u, std::string_view data);
  void h2up_on_abort(Connection* u);
  void h2up_settle(Connection* u);
  void h2up_on_head(H2Up& h, int32_t id, const http2::Head& head);
  void h2up_on_data(H2Up& h, int32_t id, std::span<const uint8_t> data);
  void h2up_on_end(H2Up& h, int32_t id);
  void h2up_on_reset(H2Up& h, int32_t id, uint32_t code);
  void h2up_on_goaway(H2Up& h, int32_t last_stream_id);
  void h2up_on_connection_error(H2Up& h, const http2::ConnectionError& error);
  void h2up_on_queue_drained(H2Up& h, int32_t id);
  // A stream's exchange lost its upstream before the response ended.
  void h2up_stream_failed(Exchange& ex, http::RetryReason reason);
  // Bytes of ex's response waiting for its client.
  size_t http_down_queued(const Exchange& ex) const;
  // Bytes of ex's request waiting for its upstream (pending included).
  size_t http_upstream_queued(const Exchange& ex) const;
  void http_body_out(Exchange& ex, std::string_view data);
  void http_body_end(Exchange& ex);

  http::ResponsePlan h2_send_response_head(Exchange& ex, const http::ResponseHead& head);
  void h2_send_body(Exchange& ex, std::string_view body);
  void h2_end_body(Exchange& ex, std::span<const http::Field> trailers);
  void h2_send_local_response(Exchange& ex, const http::LocalResponse& response);
  void h2_end_response(Exchange& ex);
  void h2_reset_response(Exchange& ex);
  http::HttpStats* http_listener_stats(const Connection* c);
  http::HttpStats* http_service_stats(const Cluster* cluster);

  ListenerRuntime& listener_config(const Connection* c) { return runtime_.listeners[c->listener]; }
  ListenerStats& lstats(const Connection* c) { return (*listener_stats_)[c->listener]; }

  unsigned index_;
  Runtime& runtime_;
  RingOptions ring_options_;
  std::unique_ptr<IoRing> ring_;
  TimerWheel timers_;
  uint64_t now_ms_;
  std::vector<ListenerSocket> listeners_;

  // HTTP: idle upstream connections per (listener, cluster), most recent last.
  std::vector<std::vector<Connection*>> pools_;
  // HTTP/2 upstream connections per pool index (shared, not checked out), and those coming
  // up that may speak HTTP/2.
  std::vector<std::vector<Connection*>> h2_pools_;
  std::unique_ptr<http::RequestParser> h2up_parser_;  // re-reads an encoded request head
  http2::OwnedFields h2up_fields_;                    // a request head for an HTTP/2 upstream
  http2::OwnedFields scratch_fields_;                 // trailers being sent
  std::vector<http::Field> h2up_regular_;
  HttpDownPool http_idle_pool_;     // state of HTTP connections, handed out per request
  std::string scratch_;             // encoded heads and local responses
  std::string authz_scratch_;       // a request path normalized for --authz-rule matching
  std::vector<Connection*> dirty_;  // HTTP connections with bytes to commit at turn end
  http2::OwnedFields h2_fields_;    // a head being translated
  // A request head from HTTP/2 as HTTP/1.1 fields: views of the session's decoded head
  // (valid during h2_on_head), and the cookie crumbs joined.
  std::vector<http::Field> h2_request_fields_;
  std::string h2_cookie_;
  std::vector<http::Field> h2_regular_;
  std::unique_ptr<http::AccessLogger> access_log_;

  std::vector<std::unique_ptr<Connection>> slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<uint16_t> slot_gen_;         // per slot: generation of its last connection
  std::vector<Connection*> retired_;       // closed, no operation outstanding: free at turn end
  uint32_t turn_id_ = 0;                   // loop turns; a Half's send_turn compares with it
  std::vector<Connection*> ticket_holds_;  // handshakes done this turn with a held ticket
  int64_t live_ = 0;
  std::vector<uint64_t> starved_;  // recv tokens that hit -ENOBUFS, to re-arm

  WorkerStats* stats_;
  std::vector<ListenerStats>* listener_stats_;

  int wake_fd_ = -1;
  uint64_t wake_value_ = 0;
  // Completions reaped in a turn: a member, so a turn does not clear 6 KiB of stack.
  std::array<Completion, 256> reap_batch_;
  bool draining_ = false;
  bool stopping_ = false;
  uint64_t stop_deadline_ms_ = 0;
  std::atomic<bool> drain_requested_{false};
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> finished_{false};
  std::atomic<int64_t> open_connections_{0};
  std::atomic<uint64_t> epoch_{0};
};

}  // namespace ringside::proxy
