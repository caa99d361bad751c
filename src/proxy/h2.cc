// The HTTP/2 server codec of the worker: a downstream connection of an HTTP listener that
// negotiated h2 with ALPN (ingress), or sent the HTTP/2 preface (h2c with prior knowledge
// on an egress, or TLS without ALPN), runs an http2::Session and one Exchange per stream.
//
// The exchange layer (http.cc) drives a stream's exchange as it drives an HTTP/1.1
// connection's: the request head is translated to the neutral head the upstream side
// forwards (HTTP/1.1 today, RFC 9113 section 8.3.1: :authority to Host, cookie crumbs
// joined), and the response reaches the client through the h2_send_* calls here (HEADERS,
// DATA, trailing HEADERS, RST_STREAM) instead of the HTTP/1.1 bytes of h1_send_*.
//
// Flow control is back-pressure both ways: a stream's receive window opens only as its
// request body drains to the upstream socket (h2_consume), and a stream whose outgoing
// queue is long pauses its upstream's reads until the session drained it
// (on_queue_drained). The session's output is produced and encrypted once per loop turn,
// and not at all while the client has more than --max-pending-bytes unread.
#include <algorithm>
#include <chrono>
#include <cstring>

#include "proxy/worker.h"
#include "ringside/log.h"

namespace ringside::proxy {
namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
// After the session finished (GOAWAY out, no stream left), how long the connection waits
// for the client to close before closing it.
constexpr uint64_t kLingerMs = 2000;
// Ended streams' objects kept per connection for the next streams.
constexpr size_t kSpareStreams = 8;

// A :path the upstream can take: origin-form (RFC 9113 8.3.1), or "*" for OPTIONS; no
// whitespace or control characters (nghttp2 checks the characters too; the upstream's
// request-line must never be split).
bool valid_path(std::string_view path, std::string_view method) {
  if (path == "*") return method == "OPTIONS";
  if (path.empty() || path.front() != '/') return false;
  for (char ch : path) {
    const auto u = static_cast<unsigned char>(ch);
    if (u <= 0x20 || u == 0x7f) return false;
  }
  return true;
}

}  // namespace

// ---- H2Down: the session's events, forwarded to the worker ----------------------------

H2Down::H2Down(Worker& w, Connection* c, const http2::Settings& settings)
    : worker(w), connection(c), session(http2::Role::kServer, *this, settings) {}

H2Down::~H2Down() = default;

H2Stream* H2Down::find(int32_t id) {
  for (auto& st : streams) {
    if (static_cast<int32_t>(st->ex.stream) == id) return st.get();
  }
  return nullptr;
}

void H2Down::on_head(int32_t id, const http2::Head& head) { worker.h2_on_head(*this, id, head); }
void H2Down::on_data(int32_t id, std::span<const uint8_t> data) {
  worker.h2_on_data(*this, id, data);
}
void H2Down::on_trailers(int32_t id, std::span<const http2::Field> fields) {
  worker.h2_on_trailers(*this, id, fields);
}
void H2Down::on_end(int32_t id) { worker.h2_on_end(*this, id); }
void H2Down::on_reset(int32_t id, uint32_t code, bool sent_by_us) {
  worker.h2_on_reset(*this, id, code, sent_by_us);
}
void H2Down::on_close(int32_t id, uint32_t code) {
  (void)code;
  worker.h2_on_close(*this, id);
}
void H2Down::on_goaway(int32_t last_stream_id, uint32_t code) {
  (void)last_stream_id;
  (void)code;  // a client's GOAWAY: it opens no more streams; the open ones finish
}
void H2Down::on_connection_error(const http2::ConnectionError& error) {
  worker.h2_on_connection_error(*this, error);
}
void H2Down::on_queue_drained(int32_t id) { worker.h2_on_queue_drained(*this, id); }

// ---- connection ----------------------------------------------------------------------

bool Worker::h2_preface(std::string_view first_bytes) {
  // "PRI " is enough: no HTTP/1.1 method is PRI (RFC 9113 3.4 reserved it), and a
  // preface split over two reads is still recognised; nghttp2 checks the rest.
  if (first_bytes.size() < 4) return false;
  const size_t n = std::min(first_bytes.size(), kPreface.size());
  return first_bytes.substr(0, n) == kPreface.substr(0, n);
}

void Worker::h2_start(Connection* c) {
  c->h2_checked = true;
  try {
    c->h2 = std::make_unique<H2Down>(*this, c, runtime_.config.http2);
  } catch (const std::bad_alloc&) {
    RS_LOG_RATE_LIMITED(log::Level::kWarn, 1, "%s: cannot create an HTTP/2 session",
                        listener_config(c).config.name.c_str());
    abort(c);
    return;
  }
  H2Down& h = *c->h2;
  h.idle_since_ms = now_ms_;
  c->down.hold = false;  // a ticket held for an HTTP/1.1 reply leaves with the preface
  format_peer_ip(c->peer, h.client_ip);
  if (c->http) {
    http_idle_pool_.give(std::move(c->http));
    c->http.reset();
  }
  lstats(c).h2_cx_total.add();
  lstats(c).h2_cx_active.inc();
  h2_mark_dirty(c);  // our SETTINGS (the server preface)
  h2_arm_timer(c);
}

void Worker::h2_down_data(Connection* c, std::string_view data) {
  H2Down& h = *c->h2;
  if (h.failed || h.closing) return;  // closing: read and discarded
  auto used = h.session.receive(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  (void)used;  // an error was reported through on_connection_error
  if (c->state != ConnState::kClosing) h2_mark_dirty(c);
}

void Worker::h2_mark_dirty(Connection* c) {
  H2Down& h = *c->h2;
  if (h.dirty || c->state == ConnState::kClosing) return;
  h.dirty = true;
  dirty_.push_back(c);
}

void Worker::h2_commit(Connection* c) {
  H2Down& h = *c->h2;
  if (c->state == ConnState::kClosing) {
    h.staged.clear();
    return;
  }
  // A client that does not read gets no more frames: what the streams queue stays in
  // their bounded queues, and their upstreams pause (h2_send_body).
  if (!h2_produce(c, c->down, h.session, h.staged)) return;
  if (h.reap) {
    // Streams closed by the session whose exchanges ended: their objects go back.
    h.reap = false;
    for (size_t i = h.streams.size(); i-- > 0;) {
      H2Stream& st = *h.streams[i];
      if (!st.closed || st.ex.active) continue;
      std::unique_ptr<H2Stream> gone = std::move(h.streams[i]);
      h.streams.erase(h.streams.begin() + static_cast<std::ptrdiff_t>(i));
      lstats(c).h2_streams_active.dec();
      if (h.spare.size() < kSpareStreams) {
        gone->trailers.clear_and_trim(1024);
        h.spare.push_back(std::move(gone));
      }
    }
    if (h.streams.empty()) {
      h.idle_since_ms = now_ms_;
      h2_arm_timer(c);
    }
  }
  h2_report(c);
  if (!h.closing && (h.failed || h.session.finished())) {
    // GOAWAY is out (a drain, an idle timeout, a connection error) and no stream is left:
    // close after what is queued, without reading more.
    h.closing = true;
    c->down.shut_wanted = true;
    if (c->down.tls && !h.failed) c->down.tls->shutdown();
    flush(c, c->down);
    if (c->state == ConnState::kClosing) return;
    if (c->down.eof && c->down.out.empty() && c->down.send_len == 0) {
      abort(c);
      return;
    }
    schedule_timer(c, now_ms_ + kLingerMs);
    return;
  }
  flush(c, c->down);
}

bool Worker::h2_produce(Connection* c, Half& half, http2::Session& session, std::string& staged) {
  if (half.out.size() <= runtime_.config.max_pending_bytes) session.produce(staged);
  if (staged.empty()) return true;
  if (half.tls) {
    if (half.tls->write(reinterpret_cast<const uint8_t*>(staged.data()), staged.size()) !=
        tls::TlsStatus::kOk) {
      staged.clear();
      abort(c);
      return false;
    }
  } else {
    half.out.append(staged.data(), staged.size());
  }
  staged.clear();
  if (staged.capacity() > 64 * 1024) std::string().swap(staged);
  return true;
}

void Worker::h2_report(Connection* c) {
  H2Down& h = *c->h2;
  const http2::Counters& now = h.session.counters();
  http2::Counters& was = h.reported;
  ListenerStats& stats = lstats(c);
  add_delta(stats.h2_resets_sent, now.resets_sent, was.resets_sent);
  add_delta(stats.h2_resets_received, now.resets_received, was.resets_received);
  add_delta(stats.h2_goaways_sent, now.goaways_sent, was.goaways_sent);
  add_delta(stats.h2_goaways_received, now.goaways_received, was.goaways_received);
  add_delta(stats.h2_refused_streams, now.refused_streams, was.refused_streams);
  add_delta(stats.h2_protocol_errors, now.malformed_messages, was.malformed_messages);
  add_delta(stats.h2_protocol_errors, now.invalid_frames, was.invalid_frames);
  add_delta(stats.h2_protocol_errors, now.header_list_too_large, was.header_list_too_large);
  add_delta(stats.h2_protocol_errors, now.too_many_headers, was.too_many_headers);
  add_delta(stats.h2_abuse_closed, now.glitch_limit_hits, was.glitch_limit_hits);
  add_delta(stats.h2_abuse_closed, now.reset_flood_hits, was.reset_flood_hits);
  add_delta(stats.h2_abuse_closed, now.ack_flood_hits, was.ack_flood_hits);
  add_delta(stats.h2_abuse_closed, now.continuation_flood_hits, was.continuation_flood_hits);
  add_delta(stats.h2_abuse_closed, now.settings_flood_hits, was.settings_flood_hits);
}

void Worker::h2_on_connection_error(H2Down& h, const http2::ConnectionError& error) {
  Connection* c = h.connection;
  h.failed = true;
  RS_LOG_RATE_LIMITED(log::Level::kInfo, 2, "%s: HTTP/2 connection error from %s: %.*s",
                      listener_config(c).config.name.c_str(), peer_label(c->peer).c_str(),
                      static_cast<int>(error.reason.size()), error.reason.data());
  h2_mark_dirty(c);  // the GOAWAY goes out; then the connection closes
}

void Worker::h2_on_sent(Connection* c) {
  H2Down& h = *c->h2;
  flush(c, c->down);
  if (h.closing) {
    if (c->down.out.empty() && c->down.send_len == 0 && c->down.eof) abort(c);
    return;
  }
  // Frames held back while the client was not reading.
  if (c->down.out.size() <= runtime_.config.max_pending_bytes / 2 && h.session.wants_output()) {
    h2_mark_dirty(c);
  }
}

void Worker::h2_on_abort(Connection* c) {
  H2Down& h = *c->h2;
  // The session is not destroyed here (this may run inside one of its callbacks): the
  // Connection's release frees it.
  for (auto& st : h.streams) {
    Exchange& ex = st->ex;
    if (ex.up != nullptr) http_release_upstream(ex, false);
    if (ex.active) {
      if (c->down.eof || !ex.response_complete)
        ex.flags |= http::kFlagDownstreamConnectionTermination;
      http_end_exchange(ex);
    }
  }
}

void Worker::h2_on_release(Connection* c) {
  h2_report(c);
  lstats(c).h2_cx_active.dec();
  lstats(c).h2_streams_active.add(-static_cast<int64_t>(c->h2->streams.size()));
}

void Worker::h2_drain(Connection* c) {
  H2Down& h = *c->h2;
  if (h.draining || h.closing || h.failed) return;
  h.draining = true;
  h.session.start_drain();
  h2_mark_dirty(c);
}

void Worker::h2_arm_timer(Connection* c) {
  H2Down& h = *c->h2;
  if (h.closing) return;  // the linger timer runs
  const http::HttpConfig& config = runtime_.config.http;
  auto ms = [](std::chrono::milliseconds d) { return static_cast<uint64_t>(d.count()); };
  uint64_t deadline = 0;
  auto earliest = [&deadline](uint64_t t) {
    if (t != 0 && (deadline == 0 || t < deadline)) deadline = t;
  };
  // A stream still open in the session (its response waiting for the client's window,
  // say) keeps the connection busy even once its exchange ended.
  const bool open = !h.streams.empty();
  for (auto& st : h.streams) {
    const Exchange& ex = st->ex;
    if (!ex.active) continue;
    earliest(http_request_deadline(ex));
    if (config.idle_timeout.count() > 0) earliest(st->last_ms + ms(config.idle_timeout));
  }
  if (config.idle_timeout.count() > 0) {
    // Idle: no stream for that long ends the connection with GOAWAY; with streams open,
    // no byte either way for that long ends it too (the streams are stuck).
    earliest((open ? c->last_activity_ms : h.idle_since_ms) + ms(config.idle_timeout));
  }
  if (deadline == 0) {
    timers_.cancel(&c->timer.node);
  } else {
    schedule_timer(c, deadline);
  }
}

void Worker::h2_timer(Connection* c) {
  H2Down& h = *c->h2;
  if (h.closing || h.idle_goaway) {
    abort(c);  // the linger after the close, or a GOAWAY for idleness the client ignored
    return;
  }
  const http::HttpConfig& config = runtime_.config.http;
  auto ms = [](std::chrono::milliseconds d) { return static_cast<uint64_t>(d.count()); };
  const bool open = !h.streams.empty();
  // Indexing: a local reply never adds or removes streams (reaping waits for the commit).
  for (size_t i = 0; i < h.streams.size() && c->state != ConnState::kClosing; ++i) {
    Exchange& ex = h.streams[i]->ex;
    if (!ex.active) continue;
    if (const uint64_t deadline = http_request_deadline(ex); deadline != 0 && now_ms_ >= deadline) {
      http_request_timed_out(ex);
      continue;
    }
    H2Stream& st = *h.streams[i];
    if (config.idle_timeout.count() > 0 && now_ms_ >= st.last_ms + ms(config.idle_timeout)) {
      // The stream idle timeout (Envoy's stream_idle_timeout): no byte of this stream
      // either way for that long. The stream ends in RST_STREAM(CANCEL), alone.
      lstats(c).timeout_idle.add();
      ex.flags |= http::kFlagStreamIdleTimeout;
      ex.details = "stream idle timeout";
      st.response_ended = true;
      h.session.reset(static_cast<int32_t>(ex.stream), http2::kCancel);
      if (ex.up != nullptr) http_release_upstream(ex, false);
      http_end_exchange(ex);
      h2_mark_dirty(c);
    }
  }
  if (c->state == ConnState::kClosing) return;
  if (config.idle_timeout.count() > 0) {
    const uint64_t since = open ? c->last_activity_ms : h.idle_since_ms;
    if (now_ms_ >= since + ms(config.idle_timeout)) {
      lstats(c).timeout_idle.add();
      if (open) {
        // Streams open and no byte either way for that long: stuck (a client that keeps
        // its window shut, or an app that does not answer). Their buffers go with it.
        for (auto& st : h.streams) {
          if (st->ex.active) st->ex.flags |= http::kFlagStreamIdleTimeout;
        }
        abort(c);
        return;
      }
      h.session.goaway(http2::kNoError);  // idle: GOAWAY, then close
      h.idle_goaway = true;
      schedule_timer(c, now_ms_ + kLingerMs);
      h2_mark_dirty(c);
      return;
    }
  }
  h2_arm_timer(c);
}

// ---- streams: the request side ---------------------------------------------------------

H2Stream* Worker::h2_stream(const Exchange& ex) {
  if (ex.down == nullptr || !ex.down->h2) return nullptr;
  return ex.down->h2->find(static_cast<int32_t>(ex.stream));
}

void Worker::h2_refuse(Exchange& ex, uint16_t status, std::string_view reason) {
  RS_LOG_RATE_LIMITED(log::Level::kInfo, 2, "%s: bad HTTP/2 request from %s: %d %.*s",
                      listener_config(ex.down).config.name.c_str(),
                      peer_label(ex.down->peer).c_str(), static_cast<int>(status),
                      static_cast<int>(reason.size()), reason.data());
  if (http::HttpStats* s = http_listener_stats(ex.down)) {
    s->request_count.add();
    s->request_active.inc();
  }
  http_local_reply(ex, status, reason, http::kFlagDownstreamProtocolError, false);
}

void Worker::h2_on_head(H2Down& h, int32_t id, const http2::Head& head) {
  Connection* c = h.connection;
  if (c->state == ConnState::kClosing) return;
  std::unique_ptr<H2Stream> fresh;
  if (!h.spare.empty()) {
    fresh = std::move(h.spare.back());
    h.spare.pop_back();
    fresh->trailers.clear();
  } else {
    fresh = std::make_unique<H2Stream>();
  }
  fresh->unconsumed = 0;
  fresh->response_ended = false;
  fresh->closed = false;
  fresh->upstream_paused = false;
  fresh->last_ms = now_ms_;
  h.streams.push_back(std::move(fresh));
  lstats(c).h2_streams_active.inc();
  H2Stream& st = *h.streams.back();
  Exchange& ex = st.ex;
  reset_exchange(ex);
  ex.down = c;
  ex.stream = static_cast<uint32_t>(id);
  ex.active = true;
  ex.start_ms = now_ms_;
  ex.client_keep_alive = true;

  // The neutral head: the pseudo-header fields give the request line, :authority gives
  // Host when there is none, cookie crumbs are one field (RFC 9113 8.3.1, 8.2.3).
  http2::to_http1_fields(head.fields, h2_request_fields_, h2_cookie_);
  http::RequestHead rh;
  std::string_view scheme;
  std::string_view authority;
  std::string_view host;
  bool has_host = false;
  bool bad_length = false;
  bool has_length = false;
  uint64_t length = 0;
  h2_regular_.clear();
  for (const http::Field& f : h2_request_fields_) {
    if (http2::is_pseudo(f.name)) {
      if (f.name == ":method") rh.method = f.value;
      if (f.name == ":path") rh.target = f.value;
      if (f.name == ":scheme") scheme = f.value;
      if (f.name == ":authority") authority = f.value;
      continue;
    }
    if (f.name == "host") {
      if (has_host && f.value != host) bad_length = true;  // two different hosts
      has_host = true;
      host = f.value;
    }
    if (f.name == "content-length") {
      uint64_t n = 0;
      if (!http2::parse_decimal(f.value, n) || (has_length && n != length)) bad_length = true;
      has_length = true;
      length = n;
    }
    h2_regular_.push_back(f);
  }
  ex.method.assign(rh.method);
  ex.path.assign(rh.target);
  ex.authority.assign(authority.empty() ? host : authority);
  if (rh.method == "CONNECT") {
    // A tunnel over one stream (RFC 9113 8.5) is not supported; nothing is forwarded.
    h2_refuse(ex, 501, "CONNECT over HTTP/2 is not supported");
    return;
  }
  if (!valid_path(rh.target, rh.method)) {
    h2_refuse(ex, 400, "invalid :path");
    return;
  }
  if (bad_length) {
    h2_refuse(ex, 400, "invalid content-length or host");
    return;
  }
  if (!authority.empty() && has_host && !http::iequals(authority, host)) {
    // RFC 9113 8.3.1: Host must name what :authority names.
    h2_refuse(ex, 400, "host differs from :authority");
    return;
  }
  rh.target_form = rh.target == "*" ? http::TargetForm::kAsterisk : http::TargetForm::kOrigin;
  rh.version = http::Version::kHttp11;
  rh.fields = h2_regular_;
  rh.authority = authority.empty() ? host : authority;
  rh.keep_alive = true;
  if (has_length) {
    rh.framing = http::Framing::kContentLength;
    rh.content_length = length;
  } else if (head.end_stream) {
    rh.framing = http::Framing::kNone;
  } else {
    rh.framing = http::Framing::kChunked;  // a body of unknown length, upstream HTTP/1.1
  }
  if (const http::Field* expect = http::find_field(rh.fields, "expect")) {
    rh.expect_continue = http::iequals(expect->value, "100-continue");
  }
  (void)scheme;
  http_start_exchange(ex, rh, h.client_ip);
}

void Worker::h2_on_data(H2Down& h, int32_t id, std::span<const uint8_t> data) {
  H2Stream* st = h.find(id);
  if (st == nullptr || data.empty()) return;
  Exchange& ex = st->ex;
  st->unconsumed += data.size();
  st->last_ms = now_ms_;
  if (!ex.active || (ex.response_complete && ex.up == nullptr)) {
    // Answered already: the rest of the body is read and dropped.
    ex.bytes_received += ex.active ? data.size() : 0;
    h.session.consume(id, st->unconsumed);
    st->unconsumed = 0;
    return;
  }
  http_exchange_body(ex, std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
  h2_consume(ex);
}

void Worker::h2_consume(Exchange& ex) {
  H2Stream* st = h2_stream(ex);
  if (st == nullptr || st->unconsumed == 0) return;
  const uint64_t low = runtime_.config.max_pending_bytes / 2;
  const bool dropped = !ex.active || (ex.response_complete && ex.up == nullptr);
  const bool drained = ex.up != nullptr && ex.head_sent && http_upstream_queued(ex) <= low;
  if (!dropped && !drained) return;  // the window stays shut until the upstream reads
  H2Down& h = *ex.down->h2;
  h.session.consume(static_cast<int32_t>(ex.stream), st->unconsumed);
  st->unconsumed = 0;
  h2_mark_dirty(ex.down);  // the WINDOW_UPDATE
}

void Worker::h2_on_trailers(H2Down& h, int32_t id, std::span<const http2::Field> fields) {
  H2Stream* st = h.find(id);
  if (st == nullptr) return;
  st->trailers.clear();
  for (const http::Field& f : fields) st->trailers.add(f.name, f.value);
}

void Worker::h2_on_end(H2Down& h, int32_t id) {
  H2Stream* st = h.find(id);
  if (st == nullptr) return;
  Exchange& ex = st->ex;
  if (!ex.active) {
    ex.request_complete = true;
    return;
  }
  // Trailers reach an HTTP/1.1 upstream only in a chunked body; with a Content-Length
  // there is no place for them (RFC 9110 6.5: a recipient may drop them).
  http_exchange_request_end(ex, st->trailers.fields());
}

void Worker::h2_on_reset(H2Down& h, int32_t id, uint32_t code, bool sent_by_us) {
  H2Stream* st = h.find(id);
  if (st == nullptr) return;
  Exchange& ex = st->ex;
  st->response_ended = true;
  if (!ex.active) return;
  // The client cancelled (or the session reset the stream on its own): the upstream's work
  // for it stops now, and its connection is not reused (its response is unread).
  ex.flags |=
      sent_by_us ? http::kFlagDownstreamProtocolError : http::kFlagDownstreamConnectionTermination;
  if (code == http2::kCancel && !sent_by_us) ex.details = "client cancelled the stream";
  if (ex.up != nullptr) http_release_upstream(ex, false);
  http_end_exchange(ex);
}

void Worker::h2_on_close(H2Down& h, int32_t id) {
  H2Stream* st = h.find(id);
  if (st == nullptr) return;
  st->closed = true;
  st->response_ended = true;
  Exchange& ex = st->ex;
  if (ex.active) {
    ex.flags |= http::kFlagDownstreamConnectionTermination;
    if (ex.up != nullptr) http_release_upstream(ex, false);
    http_end_exchange(ex);
  }
  h.reap = true;
  h2_mark_dirty(h.connection);
}

void Worker::h2_on_queue_drained(H2Down& h, int32_t id) {
  H2Stream* st = h.find(id);
  if (st == nullptr) return;
  h2up_consume(st->ex);
  if (!st->upstream_paused) return;
  st->upstream_paused = false;
  Connection* u = st->ex.up;
  if (u != nullptr && u->up.recv_paused && u->state != ConnState::kClosing) resume_recv(u, u->up);
}

// ---- streams: the response side (the h1_* calls of an HTTP/2 stream) -----------------

http::ResponsePlan Worker::h2_send_response_head(Exchange& ex, const http::ResponseHead& head) {
  H2Stream* st = h2_stream(ex);
  if (st == nullptr || st->response_ended) return {};
  H2Down& h = *ex.down->h2;
  const int32_t id = static_cast<int32_t>(ex.stream);
  st->last_ms = now_ms_;
  http::ResponseContext context;
  context.headers = runtime_.config.http.headers;
  context.request_is_head = ex.kind == http::RequestKind::kHead;
  if (!head.interim()) context.upstream_service_time_ms = ex.service_time_ms;
  const bool body = http2::to_http2_response(head, context, h2_fields_);
  constexpr auto kLower = http2::Session::NameCase::kLower;  // to_http2_response's names
  if (head.interim()) {
    if (!h.session.submit_interim(id, h2_fields_.fields(), kLower).ok()) return {};
    h2_mark_dirty(ex.down);
    return {};
  }
  const bool end = !body || context.request_is_head;
  if (!h.session.submit_response(id, h2_fields_.fields(), end, kLower).ok()) {
    st->response_ended = true;
    h.session.reset(id, http2::kInternalError);
  }
  if (end) st->response_ended = true;
  h2_mark_dirty(ex.down);
  http::ResponsePlan plan;
  plan.framing = end ? http::BodyFraming::kNone : http::BodyFraming::kChunked;
  return plan;
}

void Worker::h2_send_body(Exchange& ex, std::string_view body) {
  H2Stream* st = h2_stream(ex);
  if (st == nullptr || st->response_ended || body.empty()) return;
  H2Down& h = *ex.down->h2;
  const int32_t id = static_cast<int32_t>(ex.stream);
  st->last_ms = now_ms_;
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(body.data()), body.size());
  if (!h.session.send_data(id, bytes, false).ok()) return;
  h2_mark_dirty(ex.down);
  // The stream's queue is the back-pressure: the upstream is read again when the session
  // sent it (on_queue_drained), as far as the client's windows allow.
  // (An HTTP/2 upstream is held back by its stream's window instead: h2up_on_data.)
  if (h.session.queued(id) > runtime_.config.max_pending_bytes && ex.up != nullptr &&
      !ex.up->hup->h2 && !st->upstream_paused) {
    st->upstream_paused = true;
    pause_recv(ex.up, ex.up->up);
  }
}

void Worker::h2_end_body(Exchange& ex, std::span<const http::Field> trailers) {
  H2Stream* st = h2_stream(ex);
  if (st == nullptr || st->response_ended) return;
  H2Down& h = *ex.down->h2;
  const int32_t id = static_cast<int32_t>(ex.stream);
  st->response_ended = true;
  h2_mark_dirty(ex.down);
  if (!trailers.empty()) {
    // Trailers from a chunked HTTP/1.1 body become the trailing HEADERS (gRPC's status).
    h2_fields_.clear();
    for (const http::Field& f : trailers) {
      if (http2::is_connection_specific(f.name) || http::is_hop_by_hop(f.name, trailers)) continue;
      if (http2::is_pseudo(f.name)) continue;
      h2_fields_.add_lowercase(f.name, f.value);
    }
    if (!h2_fields_.empty() && h.session.send_trailers(id, h2_fields_.fields()).ok()) return;
  }
  (void)h.session.send_data(id, {}, true);
}

void Worker::h2_send_local_response(Exchange& ex, const http::LocalResponse& response) {
  H2Stream* st = h2_stream(ex);
  if (st == nullptr || st->response_ended) return;
  H2Down& h = *ex.down->h2;
  const int32_t id = static_cast<int32_t>(ex.stream);
  http2::to_http2_local_response(response, h2_fields_);
  st->response_ended = true;
  h2_mark_dirty(ex.down);
  if (response.head_request || response.grpc) {  // no body (gRPC: Trailers-Only)
    (void)h.session.submit_response(id, h2_fields_.fields(), true);
    return;
  }
  if (!h.session.submit_response(id, h2_fields_.fields(), false).ok()) return;
  scratch_.assign(response.body);
  scratch_ += '\n';
  (void)h.session.send_data(
      id,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(scratch_.data()), scratch_.size()),
      true);
}

void Worker::h2_end_response(Exchange& ex) {
  H2Stream* st = h2_stream(ex);
  if (st == nullptr) return;
  H2Down& h = *ex.down->h2;
  if (!st->response_ended) {
    // The exchange ended without the end of its response (it should not): the stream
    // must not stay open.
    st->response_ended = true;
    h.session.reset(static_cast<int32_t>(ex.stream), http2::kInternalError);
  }
  // A request body still arriving after a whole response is read and dropped (h2_on_data)
  // until the client ends the stream; the stream's object goes once the session closed it.
  if (st->closed) h.reap = true;
  h2_mark_dirty(ex.down);
  h2_arm_timer(ex.down);
}

void Worker::h2_reset_response(Exchange& ex) {
  H2Stream* st = h2_stream(ex);
  if (st == nullptr) return;
  H2Down& h = *ex.down->h2;
  // What the client already has stays; the stream ends in RST_STREAM, so the truncation
  // is visible (the connection and its other streams go on).
  st->response_ended = true;
  h.session.reset(static_cast<int32_t>(ex.stream), http2::kInternalError);
  if (st->closed) h.reap = true;
  h2_mark_dirty(ex.down);
}

}  // namespace ringside::proxy
