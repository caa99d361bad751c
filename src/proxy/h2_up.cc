// The HTTP/2 client codec of the worker: upstream connections that speak HTTP/2 (h2c with
// prior knowledge to a protocol=http2|grpc app, or h2 to a remote sidecar that picked it
// with ALPN), shared by the exchanges of any client connection, one stream per exchange's
// try. docs/http2.md ("Upstream") has the life cycle.
//
// Pooling: per worker and pool index (listener, service), h2_pools_ lists the HTTP/2
// connections, and those still coming up that may speak HTTP/2 (exchanges arriving
// meanwhile wait on them rather than open their own). An exchange picks its endpoint first
// (per-request balancing) and then takes a stream on a connection to that endpoint that
// has one free (the peer's SETTINGS_MAX_CONCURRENT_STREAMS); only when none has, a new
// connection. A connection is a transport, never the unit of balancing.
//
// Flow control is back-pressure: the response body of a stream is consumed (its window
// opened) only as far as the exchange's client has drained it, so a slow client holds one
// stream back, not the connection; the request body's queue is the stream's, and the
// client is read again when the session sent it (on_queue_drained).
#include <algorithm>

#include "proxy/worker.h"
#include "ringside/grpc.h"
#include "ringside/log.h"

namespace ringside::proxy {
namespace {

void unlist(std::vector<Connection*>& pool, Connection* u) {
  auto it = std::find(pool.begin(), pool.end(), u);
  if (it != pool.end()) pool.erase(it);
}

}  // namespace

// ---- H2Up -----------------------------------------------------------------------------

H2Up::H2Up(Worker& w, Connection* u, const http2::Settings& settings)
    : worker(w), connection(u), session(http2::Role::kClient, *this, settings) {}

H2Up::~H2Up() = default;

Exchange* H2Up::find(int32_t id) const {
  for (const auto& [stream, ex] : streams) {
    if (stream == id) return ex;
  }
  return nullptr;
}

void H2Up::track(int32_t id, Exchange* ex) {
  streams.emplace_back(id, ex);
  worker.lstats(connection).h2_upstream_streams_active.inc();
}

void H2Up::forget(int32_t id) {
  for (size_t i = 0; i < streams.size(); ++i) {
    if (streams[i].first == id) {
      streams[i] = streams.back();
      streams.pop_back();
      worker.lstats(connection).h2_upstream_streams_active.dec();
      return;
    }
  }
}

std::vector<std::pair<int32_t, Exchange*>> H2Up::take_all() {
  std::vector<std::pair<int32_t, Exchange*>> all;
  all.swap(streams);
  worker.lstats(connection).h2_upstream_streams_active.add(-static_cast<int64_t>(all.size()));
  return all;
}

void H2Up::on_head(int32_t id, const http2::Head& head) { worker.h2up_on_head(*this, id, head); }
void H2Up::on_data(int32_t id, std::span<const uint8_t> data) {
  worker.h2up_on_data(*this, id, data);
}
void H2Up::on_trailers(int32_t id, std::span<const http2::Field> fields) {
  trailers.clear();
  for (const http2::Field& f : fields) trailers.add(f.name, f.value);
  trailers_stream = id;
}
void H2Up::on_end(int32_t id) { worker.h2up_on_end(*this, id); }
void H2Up::on_reset(int32_t id, uint32_t code, bool sent_by_us) {
  (void)sent_by_us;
  worker.h2up_on_reset(*this, id, code);
}
void H2Up::on_close(int32_t id, uint32_t code) {
  // A stream that closed with its exchange still attached never ended cleanly.
  if (find(id) != nullptr) worker.h2up_on_reset(*this, id, code);
}
void H2Up::on_goaway(int32_t last_stream_id, uint32_t code) {
  (void)code;
  worker.h2up_on_goaway(*this, last_stream_id);
}
void H2Up::on_connection_error(const http2::ConnectionError& error) {
  worker.h2up_on_connection_error(*this, error);
}
void H2Up::on_queue_drained(int32_t id) { worker.h2up_on_queue_drained(*this, id); }

// ---- pooling --------------------------------------------------------------------------

bool Worker::h2up_attach(Exchange& ex, cluster::Endpoint* endpoint, const TlsGeneration* current) {
  const uint32_t limit = runtime_.config.http2.max_concurrent_streams;
  for (Connection* u : h2_pools_[ex.pool]) {
    if (u->state == ConnState::kClosing || u->endpoint != endpoint) continue;
    // Made with a context since rotated out (one still connecting takes the current one).
    if (current != nullptr && u->tls_generation != nullptr && u->tls_generation != current) {
      continue;
    }
    HttpUp& hu = *u->hup;
    if (hu.h2) {
      H2Up& h = *hu.h2;
      if (h.going_away || h.failed || h.session.available_streams() == 0) continue;
      endpoint->release(index_);  // the connection holds its endpoint already
      timers_.cancel(&u->timer.node);
      ex.up = u;
      http_send_request(ex);
      return true;
    }
    // Still coming up: wait for it (it may speak HTTP/2) instead of opening another.
    if (hu.h2_capable && !hu.ready && hu.waiters.size() + 1 < limit) {
      endpoint->release(index_);
      ex.up = u;
      hu.waiters.push_back(&ex);
      return true;
    }
  }
  return false;
}

void Worker::h2up_start(Connection* u) {
  HttpUp& hu = *u->hup;
  try {
    hu.h2 = std::make_unique<H2Up>(*this, u, runtime_.config.http2);
  } catch (const std::bad_alloc&) {
    http_upstream_failed(u, http::RetryReason::kConnectFailure,
                         http::LocalCause::kUpstreamConnectFailure);
    return;
  }
  lstats(u).h2_upstream_cx_active.inc();  // until the connection is released
  h2up_mark_dirty(u);                     // the preface and our SETTINGS
  // The owner and the exchanges that waited take their streams, in arrival order.
  std::vector<Exchange*> waiting;
  if (hu.owner != nullptr) waiting.push_back(hu.owner);
  waiting.insert(waiting.end(), hu.waiters.begin(), hu.waiters.end());
  hu.owner = nullptr;
  hu.waiters.clear();
  for (Exchange* ex : waiting) {
    if (u->state == ConnState::kClosing) {
      ex->up = nullptr;
      http_exchange_failed(*ex, http::RetryReason::kConnectFailure,
                           http::LocalCause::kUpstreamConnectFailure);
      continue;
    }
    http_send_request(*ex);
  }
  h2up_settle(u);
}

void Worker::h2up_settle(Connection* u) {
  if (u->state == ConnState::kClosing) return;
  H2Up& h = *u->hup->h2;
  if (!h.streams.empty()) return;
  if (h.going_away || h.failed || draining_ || stopping_) {
    abort(u);
    return;
  }
  // No stream: the connection idles in the pool until the idle timeout.
  u->hup->idle_since_ms = now_ms_;
  const auto idle = runtime_.config.http.idle_timeout;
  if (idle.count() > 0) {
    schedule_timer(u, now_ms_ + static_cast<uint64_t>(idle.count()));
  } else {
    timers_.cancel(&u->timer.node);
  }
}

void Worker::h2up_detach(Exchange& ex, bool clean) {
  Connection* u = ex.up;
  HttpUp& hu = *u->hup;
  ex.up = nullptr;
  if (!hu.h2) {
    // Waiting on a connection still coming up.
    if (hu.owner == &ex) hu.owner = nullptr;
    auto it = std::find(hu.waiters.begin(), hu.waiters.end(), &ex);
    if (it != hu.waiters.end()) hu.waiters.erase(it);
    if (hu.owner == nullptr && hu.waiters.empty() && u->state != ConnState::kClosing) abort(u);
    return;
  }
  H2Up& h = *hu.h2;
  if (ex.up_stream != 0 && h.find(ex.up_stream) == &ex) {
    h.forget(ex.up_stream);
    // A stream whose exchange lets go before both sides ended is cancelled; its window
    // comes back with it.
    if (!clean) h.session.reset(ex.up_stream, http2::kCancel);
    h2up_mark_dirty(u);
  }
  ex.up_stream = 0;
  ex.up_unconsumed = 0;
  h2up_settle(u);
}

// ---- the request ------------------------------------------------------------------------

bool Worker::h2up_send_head(Exchange& ex) {
  Connection* u = ex.up;
  H2Up& h = *u->hup->h2;
  // The head as the HTTP/1.1 path encoded it (one header policy for both), read back and
  // turned into HTTP/2 fields (RFC 9113 8.3.1): Host becomes :authority; Transfer-Encoding
  // and the other connection-specific fields go; "te: trailers" comes back if the client
  // sent it (gRPC needs it).
  if (!h2up_parser_) {
    http::Limits limits;
    limits.max_start_line = 1 << 20;
    limits.max_head_bytes = 4 << 20;
    limits.max_fields = 1 << 16;
    h2up_parser_ = std::make_unique<http::RequestParser>(limits);
  }
  http::RequestParser& parser = *h2up_parser_;
  parser.reset();
  const http::Step step = parser.parse(ex.head);
  if (step.event != http::Event::kHead) {
    RS_LOG_RATE_LIMITED(log::Level::kWarn, 2, "%s: a request head cannot be sent over HTTP/2",
                        listener_config(ex.down).config.name.c_str());
    h2up_detach(ex, false);
    http_local_reply(ex, 400, "request not representable in HTTP/2",
                     http::kFlagDownstreamProtocolError, false);
    return false;
  }
  const http::RequestHead& head = parser.head();
  http2::OwnedFields& f = h2up_fields_;
  f.clear();
  f.add(":method", head.method);
  f.add(":scheme", u->up.tls ? "https" : "http");
  f.add(":authority", head.authority);
  f.add(":path", head.target);
  for (const http::Field& field : head.fields) {
    if (http::iequals(field.name, "host") || http::iequals(field.name, "te") ||
        http2::is_connection_specific(field.name)) {
      continue;
    }
    if (ex.grpc_deadline_ms != 0 && http::iequals(field.name, "grpc-timeout")) {
      // What is left of the call's deadline, not what the client gave at its start.
      char left[9];
      const uint64_t ms = ex.grpc_deadline_ms > now_ms_ ? ex.grpc_deadline_ms - now_ms_ : 1;
      f.add("grpc-timeout", std::string_view(left, grpc::format_timeout_ms(ms, left)));
      continue;
    }
    f.add_lowercase(field.name, field.value);
  }
  if (ex.te_trailers) f.add("te", "trailers");
  // A request without a body (no Content-Length, not chunked, or an HTTP/2 request whose
  // HEADERS ended the stream) ends with its HEADERS, even before its end was parsed.
  const bool end = ex.request_framing == http::Framing::kNone;
  auto id = h.session.submit_request(f.fields(), end);
  if (!id.ok()) {
    // GOAWAY came, or the peer's stream limit was reached: another connection.
    h.going_away = h.going_away || id.error().kind == ErrorKind::kRefused;
    h2up_detach(ex, true);
    http_acquire_upstream(ex, /*fresh_only=*/true);
    return false;
  }
  ex.up_stream = *id;
  ex.up_unconsumed = 0;
  ex.up_ended = end;
  h.track(*id, &ex);
  if (++h.opened > 1) u->hup->reused = true;
  h2up_mark_dirty(u);
  return true;
}

void Worker::h2up_send_data(Exchange& ex, std::string_view data) {
  H2Up& h = *ex.up->hup->h2;
  if (data.empty() || ex.up_stream == 0) return;
  (void)h.session.send_data(
      ex.up_stream,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()), false);
  h2up_mark_dirty(ex.up);
}

void Worker::h2up_end_request(Exchange& ex) {
  H2Up& h = *ex.up->hup->h2;
  if (ex.up_stream == 0 || ex.up_ended) return;  // ended with the head (h2up_send_head)
  ex.up_ended = true;
  h2up_mark_dirty(ex.up);
  if (!ex.request_trailers.empty()) {
    scratch_fields_.clear();
    for (const http::Field& field : ex.request_trailers.fields()) {
      if (http2::is_connection_specific(field.name) || http2::is_pseudo(field.name)) continue;
      scratch_fields_.add_lowercase(field.name, field.value);
    }
    if (!scratch_fields_.empty() &&
        h.session.send_trailers(ex.up_stream, scratch_fields_.fields()).ok()) {
      return;
    }
  }
  (void)h.session.send_data(ex.up_stream, {}, true);
}

// ---- the connection -----------------------------------------------------------------------

void Worker::h2up_mark_dirty(Connection* u) {
  HttpUp& hu = *u->hup;
  if (hu.dirty || u->state == ConnState::kClosing) return;
  hu.dirty = true;
  dirty_.push_back(u);
}

void Worker::h2up_commit(Connection* u) {
  HttpUp& hu = *u->hup;
  H2Up& h = *hu.h2;
  if (u->state == ConnState::kClosing) {
    hu.staged.clear();
    return;
  }
  if (!h2_produce(u, u->up, h.session, hu.staged)) return;
  h2up_report(u);
  flush(u, u->up);
  if (u->state == ConnState::kClosing) return;
  if (h.failed || (h.session.finished() && h.streams.empty())) abort(u);
}

void Worker::h2up_report(Connection* u) {
  H2Up& h = *u->hup->h2;
  const http2::Counters& now = h.session.counters();
  http2::Counters& was = h.reported;
  ListenerStats& stats = lstats(u);
  add_delta(stats.h2_upstream_resets_sent, now.resets_sent, was.resets_sent);
  add_delta(stats.h2_upstream_resets_received, now.resets_received, was.resets_received);
  add_delta(stats.h2_upstream_goaways_received, now.goaways_received, was.goaways_received);
}

void Worker::h2up_data(Connection* u, std::string_view data) {
  H2Up& h = *u->hup->h2;
  if (h.failed) return;
  u->hup->got_bytes = true;
  (void)h.session.receive(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  if (u->state != ConnState::kClosing) h2up_mark_dirty(u);
}

void Worker::h2up_on_connection_error(H2Up& h, const http2::ConnectionError& error) {
  Connection* u = h.connection;
  RS_LOG_RATE_LIMITED(log::Level::kWarn, 2, "%s: HTTP/2 connection to %s failed: %.*s",
                      listener_config(u).config.name.c_str(), u->endpoint->text.c_str(),
                      static_cast<int>(error.reason.size()), error.reason.data());
  h.failed = true;
  h.going_away = true;
  unlist(h2_pools_[u->hup->pool], u);
  for (auto& [id, ex] : h.take_all()) {
    ex->up = nullptr;
    ex->up_stream = 0;
    h2up_stream_failed(*ex, http::RetryReason::kResetBeforeResponse);
  }
  h2up_mark_dirty(u);  // our GOAWAY, if any, then the close
}

void Worker::h2up_on_goaway(H2Up& h, int32_t last_stream_id) {
  Connection* u = h.connection;
  h.going_away = true;
  unlist(h2_pools_[u->hup->pool], u);
  // Streams above last_stream_id were not processed (RFC 9113 6.8): sent again elsewhere.
  std::vector<std::pair<int32_t, Exchange*>> unprocessed;
  for (const auto& stream : h.streams) {
    if (stream.first > last_stream_id) unprocessed.push_back(stream);
  }
  for (const auto& [id, ex] : unprocessed) h.forget(id);
  for (const auto& [id, ex] : unprocessed) {
    ex->up = nullptr;
    ex->up_stream = 0;
    h2up_stream_failed(*ex, http::RetryReason::kReusedConnectionClosed);
  }
  h2up_settle(u);
}

void Worker::h2up_on_abort(Connection* u) {
  HttpUp& hu = *u->hup;
  H2Up& h = *hu.h2;
  unlist(h2_pools_[hu.pool], u);
  for (auto& [id, ex] : h.take_all()) {
    ex->up = nullptr;
    ex->up_stream = 0;
    // Lost with the connection: a request the peer never answered on a connection that
    // had served others is the keep-alive race of HTTP/2 (a GOAWAY it had no time to send).
    h2up_stream_failed(*ex, h.opened > 1 ? http::RetryReason::kReusedConnectionClosed
                                         : http::RetryReason::kResetBeforeResponse);
  }
}

// ---- the response -------------------------------------------------------------------------

void Worker::h2up_stream_failed(Exchange& ex, http::RetryReason reason) {
  if (ex.down->state == ConnState::kClosing) return;
  ex.flags |= http::kFlagUpstreamConnectionTermination;
  if (ex.response_started) {
    http_cut(ex);
    return;
  }
  http_exchange_failed(ex, reason, http::LocalCause::kUpstreamReset);
}

void Worker::h2up_on_head(H2Up& h, int32_t id, const http2::Head& head) {
  Exchange* ex = h.find(id);
  if (ex == nullptr) return;
  Connection* u = h.connection;
  http::ResponseHead rh;
  rh.version = http::Version::kHttp11;
  h2up_regular_.clear();
  bool has_length = false;
  uint64_t length = 0;
  for (const http::Field& f : head.fields) {
    if (f.name == ":status") {
      uint64_t status = 0;
      if (http2::parse_decimal(f.value, status) && status >= 100 && status <= 599) {
        rh.status = static_cast<uint16_t>(status);
      }
      continue;
    }
    if (http2::is_pseudo(f.name)) continue;
    if (f.name == "content-length") has_length = http2::parse_decimal(f.value, length);
    h2up_regular_.push_back(f);
  }
  rh.fields = h2up_regular_;
  if (rh.status == 0 || rh.status == 101) {
    // nghttp2 checks :status; a 101 has no meaning in HTTP/2 (RFC 9113 8.6).
    h.forget(id);
    h.session.reset(id, http2::kProtocolError);
    ex->up = nullptr;
    ex->up_stream = 0;
    if (ex->response_started) {
      http_cut(*ex);
    } else {
      http_exchange_failed(*ex, http::RetryReason::kOther,
                           http::LocalCause::kUpstreamProtocolError);
    }
    h2up_mark_dirty(u);
    return;
  }
  if (!rh.interim()) {
    const bool bodiless =
        ex->kind == http::RequestKind::kHead || rh.status == 204 || rh.status == 304;
    if (bodiless) {
      rh.framing = http::Framing::kNone;
    } else if (has_length) {
      rh.framing = http::Framing::kContentLength;
      rh.content_length = length;
    } else if (head.end_stream) {
      rh.framing = http::Framing::kContentLength;  // an empty body, said as such
      rh.content_length = 0;
    } else {
      rh.framing = http::Framing::kChunked;  // DATA frames until END_STREAM
    }
  }
  http_response_head(*ex, u, rh);
}

void Worker::h2up_on_data(H2Up& h, int32_t id, std::span<const uint8_t> data) {
  Exchange* ex = h.find(id);
  if (ex == nullptr || data.empty()) return;
  ex->down->last_activity_ms = now_ms_;
  ex->bytes_sent += data.size();
  down_body(*ex, std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
  // The window opens as the client drains: now, or when its queue is short again.
  if (ex->up == nullptr) return;
  if (http_down_queued(*ex) <= runtime_.config.max_pending_bytes) {
    h.session.consume(id, data.size());
  } else {
    ex->up_unconsumed += data.size();
  }
}

void Worker::h2up_consume(Exchange& ex) {
  if (ex.up == nullptr || !ex.up->hup->h2 || ex.up_unconsumed == 0) return;
  if (http_down_queued(ex) > runtime_.config.max_pending_bytes / 2) return;
  ex.up->hup->h2->session.consume(ex.up_stream, ex.up_unconsumed);
  ex.up_unconsumed = 0;
  h2up_mark_dirty(ex.up);
}

void Worker::h2up_on_end(H2Up& h, int32_t id) {
  Exchange* ex = h.find(id);
  if (ex == nullptr) return;
  std::span<const http::Field> trailers;
  if (h.trailers_stream == id) trailers = h.trailers.fields();
  h.trailers_stream = 0;
  if (ex->head_held) {
    // A gRPC response whose head was held: its trailers' status may still be retried.
    if (http_grpc_retry_on_status(*ex, trailers)) return;
    http_grpc_release_head(*ex);
  }
  if (!ex->response_started) {
    // END_STREAM with only interim heads: not a response.
    h.forget(id);
    ex->up = nullptr;
    ex->up_stream = 0;
    http_exchange_failed(*ex, http::RetryReason::kOther, http::LocalCause::kUpstreamProtocolError);
    return;
  }
  down_end_body(*ex, trailers);
  ex->response_complete = true;
  http_finish_exchange(*ex);
}

void Worker::h2up_on_reset(H2Up& h, int32_t id, uint32_t code) {
  Exchange* ex = h.find(id);
  if (ex == nullptr) return;
  h.forget(id);
  ex->up = nullptr;
  ex->up_stream = 0;
  if (ex->response_complete) {
    http_finish_exchange(*ex);
    return;
  }
  // REFUSED_STREAM: the peer did not process it (RFC 9113 8.7); safe to send again.
  h2up_stream_failed(*ex, code == http2::kRefusedStream ? http::RetryReason::kReusedConnectionClosed
                                                        : http::RetryReason::kResetBeforeResponse);
  h2up_settle(h.connection);
}

void Worker::h2up_on_queue_drained(H2Up& h, int32_t id) {
  Exchange* ex = h.find(id);
  if (ex == nullptr) return;
  // The request body went out: its client is read again.
  if (ex->stream != 0) {
    h2_consume(*ex);
    return;
  }
  Connection* c = ex->down;
  const uint64_t low = runtime_.config.max_pending_bytes / 2;
  if (c->down.recv_paused && c->http && c->http->backlog.size() <= low &&
      http_upstream_queued(*ex) <= low) {
    resume_recv(c, c->down);
  }
}

size_t Worker::http_down_queued(const Exchange& ex) const {
  const Connection* c = ex.down;
  if (ex.stream != 0) {
    // The stream's queue, and the connection's socket: a client that reads nothing holds
    // every stream back.
    return c->h2 ? c->h2->session.queued(static_cast<int32_t>(ex.stream)) + c->down.out.size() : 0;
  }
  return c->down.out.size() + (c->http ? c->http->staged.size() : 0);
}

}  // namespace ringside::proxy
