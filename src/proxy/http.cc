// The HTTP/1.1 half of the worker (listeners with protocol=http).
//
// A downstream connection (kHttpDown) parses requests with the strict RequestParser and
// runs one exchange at a time: pipelined requests wait, unparsed, in its backlog until the
// response before them is out, so responses leave in order. Each exchange borrows an
// upstream connection (kHttpUp, a Connection object of its own) from the worker's pool for
// (listener, cluster), or opens one; when the response ends cleanly the upstream goes back
// to the pool. Plaintext for a TLS peer is staged and encrypted once per loop turn, so a
// head and a small body leave as one record. docs/http-proxy.md describes the life cycle,
// the timeouts and the retry rules.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>

#include "net/socket.h"
#include "proxy/worker.h"
#include "ringside/grpc.h"
#include "ringside/log.h"

namespace ringside::proxy {
namespace {

constexpr size_t kPlainChunk = 16 * 1024;
// Staged plaintext for a TLS peer is encrypted at once beyond this (one full record).
constexpr size_t kStageLimit = 16 * 1024;
// After the last response, how long a closing client connection is read and discarded
// (so unread pipelined bytes do not turn the close into a reset that destroys the
// response in flight).
constexpr uint64_t kLingerMs = 2000;
// Idle upstream connections kept per (listener, cluster) and worker.
constexpr size_t kMaxPooled = 256;
// Request bodies up to this size are kept until the response starts, so a request sent on
// a reused connection the upstream had just closed can be sent again.
constexpr size_t kReplayLimit = 64 * 1024;

template <typename T>
void free_buffer(T& buffer) {
  T().swap(buffer);
}

bool retryable_reason(http::RetryReason reason) { return reason != http::RetryReason::kOther; }

}  // namespace

void reset_exchange(Exchange& ex) {
  ex.down = nullptr;
  ex.stream = 0;
  ex.up = nullptr;
  ex.up_stream = 0;
  ex.up_unconsumed = 0;
  ex.up_ended = false;
  ex.active = false;
  ex.cluster = nullptr;
  ex.route = nullptr;
  ex.pool = 0;
  ex.request_complete = false;
  ex.response_started = false;
  ex.response_complete = false;
  ex.head_sent = false;
  ex.body_sent = false;
  ex.client_keep_alive = true;
  ex.upstream_keep_alive = true;
  ex.http10 = false;
  ex.upgrade = false;
  ex.tunnel = false;
  ex.te_trailers = false;
  ex.plan_close = false;
  ex.grpc = false;
  ex.grpc_status = -1;
  ex.grpc_deadline_ms = 0;
  ex.lb_endpoint = nullptr;
  ex.lb_start_us = 0;
  ex.try_start_ms = 0;
  ex.grpc_method = nullptr;
  ex.grpc_in = {};
  ex.grpc_out = {};
  ex.head_held = false;
  ex.held_status = 0;
  ex.held_fields.clear();
  ex.kind = http::RequestKind::kOther;
  ex.framing = http::BodyFraming::kNone;
  ex.request_framing = http::Framing::kNone;
  ex.retries = 0;
  ex.max_retries = 0;
  ex.status = 0;
  ex.flags = 0;
  ex.details = {};
  ex.start_ms = 0;
  ex.sent_ms = 0;
  ex.request_complete_ms = 0;
  ex.service_time_ms = -1;
  ex.bytes_received = 0;
  ex.bytes_sent = 0;
  ex.head.clear();
  ex.pending.clear();
  ex.replay.clear();
  ex.replay_overflow = false;
  ex.request_trailers.clear();
  ex.method.clear();
  ex.path.clear();
  ex.authority.clear();
  ex.user_agent.clear();
  ex.request_id.clear();
  ex.upstream_address.clear();
  ex.authz = Exchange::Authz::kNone;
  ex.authz_rule = -1;
  ex.authz_reason.clear();
}

namespace {

// The peer of a connected socket, or family 0 when getpeername(2) fails.
PeerAddress peer_of(int fd) {
  sockaddr_storage storage{};
  socklen_t len = sizeof(storage);
  PeerAddress peer;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &len) != 0) return peer;
  if (storage.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
    peer.family = AF_INET;
    peer.port = ntohs(in->sin_port);
    std::memcpy(peer.addr, &in->sin_addr, sizeof(in->sin_addr));
  } else if (storage.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    peer.family = AF_INET6;
    peer.port = ntohs(in6->sin6_port);
    std::memcpy(peer.addr, &in6->sin6_addr, sizeof(in6->sin6_addr));
  }
  return peer;
}

}  // namespace

namespace {

void append_decimal(std::string& out, unsigned value) {
  char digits[10];
  const auto end = std::to_chars(digits, digits + sizeof(digits), value).ptr;
  out.append(digits, end);
}

}  // namespace

// "10.0.0.1" (or "::1"); empty for an unknown peer. Runs once per request on a keep-alive
// connection (the per-connection HTTP state goes back to a pool while idle), so IPv4 is
// formatted by hand into a buffer: inet_ntop goes through sprintf, about 2,000
// instructions, and appending octet by octet to the string about 200.
void format_peer_ip(const PeerAddress& peer, std::string& ip) {
  ip.clear();
  if (peer.family == AF_INET) {
    char text[16];
    size_t n = 0;
    for (int i = 0; i < 4; ++i) {
      if (i != 0) text[n++] = '.';
      const unsigned octet = peer.addr[i];
      if (octet >= 100) text[n++] = static_cast<char>('0' + octet / 100);
      if (octet >= 10) text[n++] = static_cast<char>('0' + octet / 10 % 10);
      text[n++] = static_cast<char>('0' + octet % 10);
    }
    ip.assign(text, n);
  } else if (peer.family == AF_INET6) {
    char text[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(peer.family, peer.addr, text, sizeof(text));
    ip = text;
  }
}

// "10.0.0.1:5000" (or "[::1]:5000"); empty for an unknown peer. Only the access log and
// warnings show it, so it is made when they are written, not per request.
std::string peer_address(const PeerAddress& peer) {
  std::string full;
  if (peer.family != AF_INET && peer.family != AF_INET6) return full;
  if (peer.family == AF_INET6) full += '[';
  std::string ip;
  format_peer_ip(peer, ip);
  full += ip;
  if (peer.family == AF_INET6) full += ']';
  full += ':';
  append_decimal(full, peer.port);
  return full;
}

std::string peer_label(const PeerAddress& peer) {
  std::string full = peer_address(peer);
  return full.empty() ? "the local app" : full;
}

void HttpDown::recycle() {
  phase = DownPhase::kIdle;
  close_after = false;
  head_start_ms = 0;
  idle_since_ms = 0;
  std::string().swap(backlog);
  // The next connection to take this state reuses the staging buffer: two allocations
  // and frees fewer per request on a keep-alive connection, whose state comes back here
  // after every answered request. A pooled state's buffer is bounded, so the pool holds
  // at most HttpDownPool::kMax x kKeptStaging bytes of them.
  staged.clear();
  if (staged.capacity() > kKeptStaging) std::string().swap(staged);
  if (parser_) parser_->release_head_buffer();  // a split head's 32 KiB buffer
  if (ex_) {
    ex_->down = nullptr;
    ex_->up = nullptr;
    ex_->pending.clear();
    if (ex_->replay.capacity() > 4096) std::string().swap(ex_->replay);
  }
}

std::unique_ptr<HttpDown> HttpDownPool::take() {
  if (free_.empty()) return std::make_unique<HttpDown>(*limits_);
  std::unique_ptr<HttpDown> h = std::move(free_.back());
  free_.pop_back();
  return h;
}

void HttpDownPool::give(std::unique_ptr<HttpDown> h) {
  if (free_.size() >= kMax) return;
  h->recycle();
  free_.push_back(std::move(h));
}

HttpUp::~HttpUp() = default;

Connection::Connection() = default;
Connection::~Connection() = default;

// ---- stats ----------------------------------------------------------------------------

http::HttpStats* Worker::http_listener_stats(const Connection* c) {
  const int32_t i = runtime_.listeners[c->listener].http_index;
  if (!runtime_.http.stats || i < 0) return nullptr;
  return &runtime_.http.stats->listeners[index_][static_cast<size_t>(i)];
}

http::HttpStats* Worker::http_service_stats(const Cluster* cluster) {
  if (!runtime_.http.stats || cluster == nullptr || cluster->http_service < 0) return nullptr;
  return &runtime_.http.stats->services[index_][static_cast<size_t>(cluster->http_service)];
}

// ---- downstream -----------------------------------------------------------------------

HttpDown& Worker::http_down(Connection* c) {
  if (!c->http) {
    c->http = http_idle_pool_.take();
    c->http->idle_since_ms = c->last_activity_ms;
    format_peer_ip(c->peer, c->http->client_ip);
  }
  return *c->http;
}

void Worker::http_release_idle(Connection* c) {
  if (c->http && c->state != ConnState::kClosing && c->http->idle()) {
    http_idle_pool_.give(std::move(c->http));
    c->http.reset();
  }
}

void Worker::http_accept(Connection* c) {
  c->kind = ConnKind::kHttpDown;
  // The client's address is needed for x-forwarded-for (ingress) and the access log and
  // the bad-request log line; an egress without an access log skips the system call.
  const bool ingress = listener_config(c).config.kind == ListenerKind::kIngress;
  if (ingress || access_log_) c->peer = peer_of(c->down.fd);
  if (ingress) {
    start_ingress(c);  // the TLS handshake; on_handshake_done() comes back here
    return;
  }
  c->state = ConnState::kRelaying;
  http_arm_down_timer(c);
  arm_recv(c, c->down);
}

void Worker::http_input(Connection* c, Half& in, const uint8_t* data, size_t len) {
  if (!in.tls) {
    http_plaintext(c, in, data, len);
    return;
  }
  tls::TlsSession& session = *in.tls;
  session.set_input(data, len);
  if (!advance_handshake(c, in)) return;
  while (c->state != ConnState::kClosing) {
    uint8_t plain[kPlainChunk];
    size_t n = 0;
    tls::TlsStatus status = session.read(plain, sizeof(plain), &n);
    if (status == tls::TlsStatus::kOk) {
      http_plaintext(c, in, plain, n);
      continue;
    }
    if (status == tls::TlsStatus::kWantRead) break;
    if (status == tls::TlsStatus::kClosed) {
      flush(c, in);
      if (c->kind == ConnKind::kHttpDown) {
        http_down_eof(c);
      } else {
        http_up_eof(c);
      }
      return;
    }
    RS_LOG_RATE_LIMITED(
        log::Level::kInfo, 2, "%s: %s TLS error: %s", listener_config(c).config.name.c_str(),
        in.id == HalfId::kDown ? "downstream" : "upstream", session.error_detail().c_str());
    lstats(c).cx_reset.add();
    abort(c);
    return;
  }
  if (c->state != ConnState::kClosing) flush(c, in);
}

void Worker::http_plaintext(Connection* c, Half& in, const uint8_t* data, size_t len) {
  (void)in;
  std::string_view bytes(reinterpret_cast<const char*>(data), len);
  if (c->kind == ConnKind::kHttpDown) {
    http_down_data(c, bytes);
  } else {
    http_up_data(c, bytes);
  }
}

void Worker::http_down_data(Connection* c, std::string_view data) {
  if (c->h2) {
    h2_down_data(c, data);
    return;
  }
  if (!c->h2_checked) {
    // The first bytes of the connection: HTTP/2 with prior knowledge (h2c, or TLS
    // without ALPN) starts with its preface, which no HTTP/1.1 request does.
    c->h2_checked = true;
    if (h2_preface(data)) {
      h2_start(c);
      h2_down_data(c, data);
      return;
    }
  }
  HttpDown& h = http_down(c);
  switch (h.phase) {
    case DownPhase::kLingering:
      return;  // discarded: the connection is closing
    case DownPhase::kTunnel:
      h.ex().bytes_received += data.size();
      if (h.ex().up != nullptr) {
        http_to_upstream(h.ex().up, data.data(), data.size());
        if (h.ex().up->up.out.size() > runtime_.config.max_pending_bytes) pause_recv(c, c->down);
      }
      return;
    default:
      break;
  }
  const bool busy = h.exchange_active() && h.ex().request_complete;
  if (busy || !h.backlog.empty()) {
    h.backlog.append(data);
    if (h.backlog.size() > runtime_.config.max_pending_bytes) pause_recv(c, c->down);
    if (!busy) http_parse(c);
    return;
  }
  size_t used = http_parse_input(c, data);
  if (c->state == ConnState::kClosing || h.phase == DownPhase::kLingering) return;
  if (used < data.size()) {
    if (h.phase == DownPhase::kTunnel) {
      h.ex().bytes_received += data.size() - used;
      if (h.ex().up != nullptr) http_to_upstream(h.ex().up, data.data() + used, data.size() - used);
    } else {
      h.backlog.append(data.substr(used));
      if (h.backlog.size() > runtime_.config.max_pending_bytes) pause_recv(c, c->down);
    }
  }
}

void Worker::http_parse(Connection* c) {
  HttpDown& h = *c->http;
  if (h.parsing || h.backlog.empty()) return;
  size_t used = http_parse_input(c, h.backlog);
  if (c->state == ConnState::kClosing || h.phase == DownPhase::kLingering) {
    h.backlog.clear();
    return;
  }
  if (h.phase == DownPhase::kTunnel) {
    // Bytes the client sent behind the upgrade request belong to the new protocol.
    if (h.ex().up != nullptr && used < h.backlog.size()) {
      h.ex().bytes_received += h.backlog.size() - used;
      http_to_upstream(h.ex().up, h.backlog.data() + used, h.backlog.size() - used);
    }
    h.backlog.clear();
    return;
  }
  h.backlog.erase(0, used);
  if (h.backlog.size() <= runtime_.config.max_pending_bytes / 2) {
    if (c->down.recv_paused) resume_recv(c, c->down);
  }
}

size_t Worker::http_parse_input(Connection* c, std::string_view input) {
  HttpDown& h = *c->http;
  h.parsing = true;
  size_t used = 0;
  while (c->state != ConnState::kClosing) {
    if (h.phase == DownPhase::kLingering || h.phase == DownPhase::kTunnel) break;
    if (h.exchange_active() && h.ex().request_complete) break;  // wait for the response
    if (used == input.size() && !h.exchange_active()) break;
    http::Step step = h.parser().parse(input.substr(used));
    used += step.consumed;
    bool stop = false;
    switch (step.event) {
      case http::Event::kNeedMore:
        if (!h.exchange_active() && used > 0 && h.phase == DownPhase::kIdle) {
          h.phase = DownPhase::kHead;
          h.head_start_ms = now_ms_;
          http_arm_down_timer(c);
        }
        stop = true;
        break;
      case http::Event::kHead:
        http_begin_request(c);
        break;
      case http::Event::kBody:
        http_request_body(c, step.body);
        break;
      case http::Event::kMessageComplete:
        http_request_complete(c);
        break;
      case http::Event::kError:
        http_request_error(c);
        used = input.size();  // everything behind a bad request is discarded
        stop = true;
        break;
      case http::Event::kTunnel:
        stop = true;
        break;
    }
    if (stop) break;
  }
  h.parsing = false;
  return used;
}

void Worker::http_begin_request(Connection* c) {
  HttpDown& h = *c->http;
  Exchange& ex = h.ex();
  reset_exchange(ex);
  ex.down = c;
  ex.active = true;
  ex.start_ms = h.phase == DownPhase::kHead ? h.head_start_ms : now_ms_;
  h.phase = DownPhase::kExchange;
  h.head_start_ms = 0;
  http_start_exchange(ex, h.parser().head(), h.client_ip);
}

void Worker::http_start_exchange(Exchange& ex, const http::RequestHead& head,
                                 std::string_view client_ip) {
  Connection* c = ex.down;
  const ListenerRuntime& listener = listener_config(c);
  const http::HttpConfig& config = runtime_.config.http;
  ex.method.assign(head.method);
  ex.path.assign(head.target);
  ex.authority.assign(head.authority);
  if (const http::Field* ua = http::find_field(head.fields, "user-agent")) {
    ex.user_agent.assign(ua->value);
  }
  ex.kind = head.is_head()      ? http::RequestKind::kHead
            : head.is_connect() ? http::RequestKind::kConnect
                                : http::RequestKind::kOther;
  ex.http10 = head.version == http::Version::kHttp10;
  ex.client_keep_alive = head.keep_alive;
  ex.upgrade = head.upgrade;
  if (const http::Field* te = http::find_field(head.fields, "te")) {
    ex.te_trailers = te->value.find("trailers") != std::string_view::npos;
  }
  ex.request_framing = head.framing;
  if (const http::Field* type = http::find_field(head.fields, "content-type")) {
    ex.grpc = grpc::is_grpc_content_type(type->value);
  }
  if (ex.grpc) {
    // grpc-timeout bounds the whole call from now (with --request-timeout, the smaller);
    // what is left of it goes upstream (h2up_send_head). A malformed one is ignored, as
    // grpc's own servers do.
    if (const http::Field* timeout = http::find_field(head.fields, "grpc-timeout")) {
      if (const auto ms = grpc::parse_timeout_ms(timeout->value)) {
        ex.grpc_deadline_ms = now_ms_ + std::max<uint64_t>(*ms, 1);
      }
    }
  }
  std::string_view id = http::find_request_id(head.fields);
  if (id.empty()) {
    http::RequestId fresh = http::generate_request_id();
    ex.request_id.assign(fresh.view());
  } else {
    ex.request_id.assign(id);
  }
  const bool ingress = listener.config.kind == ListenerKind::kIngress;
  ex.cluster = listener.cluster;
  if (!ingress && !runtime_.http.routes.empty()) {
    ex.route = runtime_.http.routes.match(head.authority, http::target_path(head));
    if (ex.route != nullptr) {
      const Cluster* routed = runtime_.http.cluster_of(ex.route);
      if (routed != nullptr) ex.cluster = routed;
    }
  }
  ex.max_retries = http::retry_limit(ex.route, config.retries);
  ex.pool = static_cast<uint32_t>(c->listener * runtime_.clusters.size() + ex.cluster->index);
  if (http::HttpStats* s = http_listener_stats(c)) {
    s->request_count.add();
    s->request_active.inc();
  }
  if (http::HttpStats* s = http_service_stats(ex.cluster)) {
    s->request_count.add();
    s->request_active.inc();
  }
  if (ex.grpc && runtime_.http.grpc_stats && ex.cluster->http_service >= 0) {
    grpc::MethodTable& table =
        *runtime_.http.grpc_stats->tables[index_][static_cast<size_t>(ex.cluster->http_service)];
    ex.grpc_method = table.find_or_add(http::target_path(head));
    ex.grpc_method->calls.add();
  }

  if (c->auth && c->auth->policy != nullptr && !c->auth->policy->rules.empty() &&
      !http_authorize(ex, head)) {
    return;
  }

  http::RequestContext context;
  context.headers = config.headers;
  context.ingress = ingress;
  if (c->auth) context.client_cert = c->auth->xfcc;
  context.client_tls = !c->plaintext;
  context.trusted_downstream =
      any_contains(config.trusted_downstreams, c->peer.family, c->peer.addr);
  context.client_address = client_ip;
  context.request_id = ex.request_id;
  context.default_host = ex.cluster->name;
  http::encode_request_head(head, context, ex.head);
  http_arm_down_timer(c);
  if (ex.cluster->endpoints->empty()) {
    http_local_reply(ex, http::local_status(http::LocalCause::kNoHealthyUpstream),
                     http::local_body(http::LocalCause::kNoHealthyUpstream),
                     http::response_flag_for(http::LocalCause::kNoHealthyUpstream), false);
    return;
  }
  http_acquire_upstream(ex, false);
}

bool Worker::http_authorize(Exchange& ex, const http::RequestHead& head) {
  Connection* c = ex.down;
  const PeerAuth& auth = *c->auth;
  const authz::ListenerPolicy& policy = *auth.policy;
  const int rule = authz::match_rule(policy, head.authority, http::target_path(head), head.method,
                                     authz_scratch_);
  if (rule < 0) return true;  // no rule: the connection's admission decides
  ex.authz_rule = static_cast<int16_t>(rule);
  AuthzRuleCounters& counters =
      runtime_.authz.rules[index_][c->listener][static_cast<size_t>(rule)];
  ListenerStats& stats = lstats(c);
  if (auth.verified && ((auth.grant.rules_allowed >> rule) & 1) != 0) {
    ex.authz = Exchange::Authz::kAllowed;
    counters.allowed.add();
    stats.authz_rq_allowed.add();
    return true;
  }
  const authz::Rule& matched = policy.rules[static_cast<size_t>(rule)];
  ex.authz_reason = "forbidden by authorization rule " + std::to_string(rule) + " (" +
                    matched.spec + "): client identity " + auth.identity + " is not allowed";
  if (policy.mode == authz::Mode::kAudit) {
    ex.authz = Exchange::Authz::kWouldDeny;
    counters.would_deny.add();
    stats.authz_rq_would_deny.add();
    RS_LOG_RATE_LIMITED(log::Level::kInfo, 2, "%s: authz=audit: would deny %s %s: %s",
                        listener_config(c).config.name.c_str(), ex.method.c_str(), ex.path.c_str(),
                        ex.authz_reason.c_str());
    return true;
  }
  ex.authz = Exchange::Authz::kDenied;
  counters.denied.add();
  stats.authz_rq_denied.add();
  http_arm_down_timer(c);  // as for any local reply: the rest of the request may follow
  http_local_reply(ex, 403, ex.authz_reason, 0, false);
  return false;
}

void Worker::http_request_body(Connection* c, std::string_view body) {
  HttpDown& h = *c->http;
  if (!h.exchange_active() || body.empty()) return;
  if (http_exchange_body(h.ex(), body)) pause_recv(c, c->down);
}

bool Worker::http_exchange_body(Exchange& ex, std::string_view body) {
  ex.bytes_received += body.size();
  if (ex.grpc_method != nullptr) ex.grpc_method->request_messages.add(ex.grpc_in.feed(body));
  if (ex.response_complete && ex.up == nullptr) return false;  // answered already: dropped
  // The payload only: an HTTP/1.1 upstream gets it framed as the head says when it is
  // sent (http_body_out), an HTTP/2 one as DATA.
  if (ex.up != nullptr && ex.head_sent) {
    http_body_out(ex, body);
  } else {
    ex.pending.append(body.data(), body.size());
  }
  return http_upstream_queued(ex) > runtime_.config.max_pending_bytes;
}

size_t Worker::http_upstream_queued(const Exchange& ex) const {
  size_t n = ex.pending.size();
  if (ex.up == nullptr) return n;
  const HttpUp& hu = *ex.up->hup;
  if (hu.h2) return n + hu.h2->session.queued(ex.up_stream);
  return n + ex.up->up.out.size() + hu.staged.size();
}

void Worker::http_body_out(Exchange& ex, std::string_view data) {
  Connection* u = ex.up;
  ex.body_sent = true;
  // Kept while small for a resend that cannot duplicate anything: the keep-alive race of a
  // reused HTTP/1.1 connection, or a stream an HTTP/2 upstream refused or never processed.
  if (!ex.replay_overflow && (u->hup->reused || u->hup->h2)) {
    if (ex.replay.size() + data.size() <= kReplayLimit) {
      ex.replay.append(data);
    } else {
      ex.replay_overflow = true;
      ex.replay.clear();
    }
  }
  if (u->hup->h2) {
    h2up_send_data(ex, data);
    return;
  }
  if (ex.request_framing != http::Framing::kChunked) {
    http_to_upstream(u, data.data(), data.size());
    return;
  }
  scratch_.clear();
  http::append_chunk_header(scratch_, data.size());
  scratch_.append(data);
  http::append_chunk_end(scratch_);
  http_to_upstream(u, scratch_.data(), scratch_.size());
}

void Worker::http_body_end(Exchange& ex) {
  if (ex.up->hup->h2) {
    h2up_end_request(ex);
    return;
  }
  if (ex.request_framing != http::Framing::kChunked) return;
  scratch_.clear();
  http::append_last_chunk(scratch_, ex.request_trailers.fields());
  http_to_upstream(ex.up, scratch_.data(), scratch_.size());
}

void Worker::http_request_complete(Connection* c) {
  HttpDown& h = *c->http;
  if (!h.exchange_active()) return;
  http_exchange_request_end(h.ex(), h.parser().trailers());
}

void Worker::http_exchange_request_end(Exchange& ex, std::span<const http::Field> trailers) {
  // Kept until the request is sent (and for a resend): after the body, as the last chunk
  // of a chunked HTTP/1.1 body or as HTTP/2 trailers.
  ex.request_trailers.clear();
  for (const http::Field& f : trailers) ex.request_trailers.add(f.name, f.value);
  if (ex.up != nullptr && ex.head_sent) http_body_end(ex);
  ex.request_complete = true;
  ex.request_complete_ms = now_ms_;
  if (ex.response_complete) {
    http_finish_exchange(ex);
    return;
  }
  http_arm_down_timer(ex.down);
}

void Worker::http_request_error(Connection* c) {
  HttpDown& h = *c->http;
  const http::ParseError& error = h.parser().error();
  RS_LOG_RATE_LIMITED(log::Level::kInfo, 2, "%s: bad request from %s: %d %.*s",
                      listener_config(c).config.name.c_str(), peer_label(c->peer).c_str(),
                      static_cast<int>(error.status), static_cast<int>(error.reason.size()),
                      error.reason.data());
  if (h.exchange_active()) {
    // A broken body of a request already forwarded: the upstream got part of it.
    if (h.ex().up != nullptr) http_release_upstream(h.ex(), false);
    if (h.ex().response_started) {
      http_cut(h.ex());
      return;
    }
  }
  http_local_reply(http_exchange_of(c), error.status, error.reason,
                   http::kFlagDownstreamProtocolError, true);
}

void Worker::http_down_eof(Connection* c) {
  c->down.eof = true;
  if (c->state == ConnState::kDownHandshake) {
    on_eof(c, c->down);  // counts the failed handshake and closes
    return;
  }
  if (!c->http) {
    // A clean close between requests; on HTTP/2, the end of every open stream.
    abort(c);
    return;
  }
  HttpDown& h = *c->http;
  h.client_eof = true;
  switch (h.phase) {
    case DownPhase::kLingering:
      if (c->down.out.empty() && c->down.send_len == 0) abort(c);
      return;
    case DownPhase::kIdle:
      abort(c);  // a clean close between requests
      return;
    case DownPhase::kHead:
      abort(c);  // the client gave up in the middle of a head
      return;
    case DownPhase::kTunnel:
      if (h.ex().up != nullptr) {
        Connection* u = h.ex().up;
        http_commit(u);
        u->up.shut_wanted = true;
        if (u->up.tls) u->up.tls->shutdown();
        flush(u, u->up);
        if (u->up.eof) abort(c);
      } else {
        abort(c);
      }
      return;
    case DownPhase::kExchange:
      if (!h.ex().request_complete && h.ex().response_complete) {
        // The client stopped its upload after reading an early response: the answer
        // it has is whole; the connection closes after what is still queued for it.
        http_finish_exchange(h.ex());
        return;
      }
      if (!h.ex().request_complete) {
        h.ex().flags |= http::kFlagDownstreamConnectionTermination;
        abort(c);  // the request was cut short: nothing sensible can follow
      }
      // Otherwise the response still comes; the connection closes after it.
      return;
  }
}

void Worker::http_to_client(Connection* c, const void* data, size_t len) {
  HttpDown& h = http_down(c);
  http_stage(c, c->down, h.staged, h.dirty, data, len);
}

void Worker::http_to_upstream(Connection* u, const void* data, size_t len) {
  http_stage(u, u->up, u->hup->staged, u->hup->dirty, data, len);
}

void Worker::http_stage(Connection* c, Half& half, std::string& staged, bool& dirty,
                        const void* data, size_t len) {
  if (len == 0) return;
  if (!half.tls) {
    // Plaintext is queued as is but, like TLS records, sent once per loop turn: a head
    // and the body that follows it in the same input leave in one send (one segment,
    // one wake-up of the reader, no separate ACK), not as a head-only send and the rest
    // after its completion.
    half.out.append(data, len);
    if (half.out.size() >= kStageLimit) {
      flush(c, half);
    } else if (!dirty) {
      dirty = true;
      dirty_.push_back(c);
    }
    return;
  }
  // A head and the body after it usually fit the first reservation, instead of growing
  // the buffer once per append.
  if (staged.empty() && staged.capacity() < HttpDown::kKeptStaging) {
    staged.reserve(HttpDown::kKeptStaging);
  }
  staged.append(static_cast<const char*>(data), len);
  if (staged.size() >= kStageLimit) {
    http_commit(c);
  } else if (!dirty) {
    dirty = true;
    dirty_.push_back(c);
  }
}

void Worker::http_commit(Connection* c) {
  if (c->h2) {
    h2_commit(c);
    return;
  }
  if (c->kind == ConnKind::kHttpUp && c->hup->h2) {
    h2up_commit(c);
    return;
  }
  Half& half = c->kind == ConnKind::kHttpDown ? c->down : c->up;
  if (!half.tls || (c->kind == ConnKind::kHttpDown && !c->http)) {
    half.hold = false;
    if (c->state != ConnState::kClosing) flush(c, half);
    return;
  }
  if (http_seal_staged(c)) flush(c, half);
}

bool Worker::http_seal_staged(Connection* c) {
  Half& half = c->kind == ConnKind::kHttpDown ? c->down : c->up;
  std::string& staged = c->kind == ConnKind::kHttpDown ? c->http->staged : c->hup->staged;
  if (staged.empty() || c->state == ConnState::kClosing) {
    staged.clear();
    return false;
  }
  half.hold = false;  // a reply: the session ticket held since the handshake leaves with it
  if (half.tls->write(reinterpret_cast<const uint8_t*>(staged.data()), staged.size()) !=
      tls::TlsStatus::kOk) {
    staged.clear();
    abort(c);
    return false;
  }
  staged.clear();
  return true;
}

void Worker::http_commit_dirty() {
  // Indexing, not iterators: a commit may abort a connection, never add to the list.
  for (size_t i = 0; i < dirty_.size(); ++i) {
    Connection* c = dirty_[i];
    if (c->h2) {
      c->h2->dirty = false;
      h2_commit(c);
    } else if (c->kind == ConnKind::kHttpDown) {
      c->http->dirty = false;
      http_commit(c);
      http_release_idle(c);  // the turn that answered its last request is over
    } else {
      c->hup->dirty = false;
      http_commit(c);
    }
  }
  dirty_.clear();
}

// ---- the server codec of an exchange's client connection ------------------------------
//
// Stream 0 is an HTTP/1.1 connection's only exchange; any other stream is an HTTP/2
// stream of ex.down (h2.cc).

namespace {

// A gRPC call's status as the client gets it: in the response head (Trailers-Only) or in
// the trailers.
void note_grpc_status(Exchange& ex, std::span<const http::Field> fields) {
  if (!ex.grpc) return;
  if (const http::Field* f = http::find_field(fields, "grpc-status")) {
    if (const auto status = grpc::parse_status(f->value)) {
      ex.grpc_status = static_cast<int8_t>(*status);
    }
  }
}

}  // namespace

http::ResponsePlan Worker::down_response_head(Exchange& ex, const http::ResponseHead& head) {
  if (!head.interim()) note_grpc_status(ex, head.fields);
  return ex.stream != 0 ? h2_send_response_head(ex, head) : h1_send_response_head(ex, head);
}

void Worker::down_body(Exchange& ex, std::string_view body) {
  http_grpc_release_head(ex);  // response DATA: from here on, no retry
  if (ex.grpc_method != nullptr) ex.grpc_method->response_messages.add(ex.grpc_out.feed(body));
  if (ex.stream != 0) {
    h2_send_body(ex, body);
  } else {
    h1_send_body(ex, body);
  }
}

void Worker::down_end_body(Exchange& ex, std::span<const http::Field> trailers) {
  note_grpc_status(ex, trailers);
  if (ex.stream != 0) {
    h2_end_body(ex, trailers);
  } else {
    h1_end_body(ex, trailers);
  }
}

void Worker::down_local_response(Exchange& ex, const http::LocalResponse& response) {
  if (ex.stream != 0) {
    h2_send_local_response(ex, response);
  } else {
    h1_send_local_response(ex, response);
  }
}

void Worker::down_end_response(Exchange& ex) {
  if (ex.stream != 0) {
    h2_end_response(ex);
  } else {
    h1_end_response(ex);
  }
}

void Worker::down_reset_response(Exchange& ex) {
  if (ex.stream != 0) {
    h2_reset_response(ex);
  } else {
    h1_reset_response(ex);
  }
}

// ---- HTTP/1.1 server codec: an exchange's response on its client connection ---------
//
// The exchange layer answers through these calls only; each writes HTTP/1.1 bytes for
// ex.down (stream 0). The HTTP/2 server codec will implement the same calls per stream.

http::ResponsePlan Worker::h1_send_response_head(Exchange& ex, const http::ResponseHead& head) {
  if (head.interim() && ex.http10) return {};  // an HTTP/1.0 client gets no 1xx
  Connection* c = ex.down;
  http::ResponseContext context;
  context.headers = runtime_.config.http.headers;
  context.client_version = ex.http10 ? http::Version::kHttp10 : http::Version::kHttp11;
  context.request_is_head = ex.kind == http::RequestKind::kHead;
  context.close = !ex.client_keep_alive || draining_ || c->http->client_eof;
  if (!head.interim()) context.upstream_service_time_ms = ex.service_time_ms;
  scratch_.clear();
  const http::ResponsePlan plan = http::encode_response_head(head, context, scratch_);
  http_to_client(c, scratch_.data(), scratch_.size());
  return plan;
}

void Worker::h1_send_body(Exchange& ex, std::string_view body) {
  if (ex.framing != http::BodyFraming::kChunked) {
    http_to_client(ex.down, body.data(), body.size());
    return;
  }
  scratch_.clear();
  http::append_chunk_header(scratch_, body.size());
  scratch_.append(body);
  http::append_chunk_end(scratch_);
  http_to_client(ex.down, scratch_.data(), scratch_.size());
}

void Worker::h1_end_body(Exchange& ex, std::span<const http::Field> trailers) {
  if (ex.framing != http::BodyFraming::kChunked) return;
  scratch_.clear();
  http::append_last_chunk(scratch_, trailers);
  http_to_client(ex.down, scratch_.data(), scratch_.size());
}

void Worker::h1_send_local_response(Exchange& ex, const http::LocalResponse& response) {
  scratch_.clear();
  http::make_local_response(response, scratch_);
  http_to_client(ex.down, scratch_.data(), scratch_.size());
}

void Worker::h1_end_response(Exchange& ex) {
  Connection* c = ex.down;
  HttpDown& h = *c->http;
  const bool close =
      ex.plan_close || !ex.client_keep_alive || draining_ || !ex.request_complete || h.client_eof;
  if (close) {
    http_close_after_flush(c);
    return;
  }
  h.phase = DownPhase::kIdle;
  h.idle_since_ms = now_ms_;
  http_arm_down_timer(c);
  if (!h.parsing && !h.backlog.empty()) http_parse(c);
  if (c->state == ConnState::kClosing) return;
  if (c->down.recv_paused && h.backlog.size() <= runtime_.config.max_pending_bytes / 2) {
    resume_recv(c, c->down);
  }
}

void Worker::h1_reset_response(Exchange& ex) {
  // What the client already has (the head, part of the body) still reaches it; the
  // connection then ends without close_notify, so the truncation is visible to it.
  http_close_after_flush(ex.down, false);
}

// ---- exchange -------------------------------------------------------------------------

Exchange& Worker::http_exchange_of(Connection* c) {
  HttpDown& h = *c->http;
  Exchange& ex = h.ex();
  if (!ex.active) {
    // A request refused before its head was complete (parse error, header timeout).
    reset_exchange(ex);
    ex.down = c;
    ex.active = true;
    ex.start_ms = h.head_start_ms != 0 ? h.head_start_ms : now_ms_;
    ex.client_keep_alive = false;
    if (http::HttpStats* s = http_listener_stats(c)) {
      s->request_count.add();
      s->request_active.inc();
    }
  }
  return ex;
}

void Worker::http_local_reply(Exchange& ex, uint16_t status, std::string_view body, uint32_t flag,
                              bool force_close) {
  Connection* c = ex.down;
  // A gRPC call gets its failure as a status (Trailers-Only, HTTP 200): the log says 200
  // and the grpc-status; the proxy's 4xx/5xx counters still count the failure.
  ex.status = ex.grpc ? 200 : status;
  if (ex.grpc) ex.grpc_status = static_cast<int8_t>(grpc::status_for_http(status));
  ex.flags |= flag;
  ex.details = body;
  ex.head_held = false;  // an attempt's response head held back, superseded by this reply
  const bool close = force_close || !ex.client_keep_alive || draining_ || !ex.request_complete;
  http::LocalResponse response;
  response.status = status;
  response.body = body;
  response.request_id = ex.request_id;
  response.close = close;
  response.head_request = ex.kind == http::RequestKind::kHead;
  response.server_header = runtime_.config.http.headers.server;
  response.grpc = ex.grpc;
  down_local_response(ex, response);
  ex.response_started = true;
  ex.plan_close = close;
  if (!response.head_request && !response.grpc) ex.bytes_sent += body.size() + 1;
  if (http::HttpStats* s = http_listener_stats(c)) s->record_proxy_response(status);
  if (http::HttpStats* s = http_service_stats(ex.cluster)) s->record_proxy_response(status);
  http_finish_exchange(ex);
}

void Worker::http_log(const Exchange& ex) {
  if (!access_log_) return;
  const Connection* c = ex.down;
  http::AccessLogEntry entry;
  const uint64_t duration = now_ms_ >= ex.start_ms ? now_ms_ - ex.start_ms : 0;
  entry.start_time = std::chrono::system_clock::now() - std::chrono::milliseconds(duration);
  entry.method = ex.method;
  entry.path = ex.path;
  entry.protocol = ex.stream != 0 ? "HTTP/2" : ex.http10 ? "HTTP/1.0" : "HTTP/1.1";
  entry.status = ex.status;
  entry.response_flags = ex.flags;
  entry.details = ex.details;
  entry.bytes_received = ex.bytes_received;
  entry.bytes_sent = ex.bytes_sent;
  entry.duration_ms = duration;
  entry.upstream_service_time_ms = ex.service_time_ms;
  entry.upstream_address = ex.upstream_address;
  if (ex.cluster != nullptr) entry.upstream_service = ex.cluster->name;
  entry.retry_count = ex.retries;
  entry.request_id = ex.request_id;
  entry.authority = ex.authority;
  entry.user_agent = ex.user_agent;
  entry.listener = listener_config(c).config.name;
  // The entry holds views: the formatted address must outlive the write below.
  const std::string downstream_address = peer_address(c->peer);
  entry.downstream_address = downstream_address;
  entry.grpc_status = ex.grpc_status;
  if (listener_config(c).config.kind == ListenerKind::kIngress)
    entry.downstream_tls = !c->plaintext;
  if (c->auth && c->auth->verified) entry.peer_identity = c->auth->identity;
  switch (ex.authz) {
    case Exchange::Authz::kNone:
      break;
    case Exchange::Authz::kAllowed:
      entry.authz = "allowed";
      break;
    case Exchange::Authz::kDenied:
      entry.authz = "denied";
      break;
    case Exchange::Authz::kWouldDeny:
      entry.authz = "would_deny";
      break;
  }
  access_log_->log(entry);
}

void Worker::http_end_exchange(Exchange& ex) {
  http_lb_end(ex, /*sample=*/false);
  if (!ex.active) return;
  ex.active = false;
  if (ex.grpc_method != nullptr) {
    ex.grpc_method
        ->answers[ex.grpc_status >= 0 ? static_cast<size_t>(ex.grpc_status)
                                      : grpc::MethodStats::kNoStatus]
        .add();
    ex.grpc_method->duration.record(now_ms_ >= ex.start_ms ? now_ms_ - ex.start_ms : 0);
    ex.grpc_method = nullptr;
  }
  http_log(ex);
  const Connection* c = ex.down;
  const uint64_t bytes = ex.bytes_received + ex.bytes_sent;
  if (http::HttpStats* s = http_listener_stats(c)) {
    s->request_active.dec();
    s->target_processed_bytes.add(bytes);
  }
  if (http::HttpStats* s = http_service_stats(ex.cluster)) {
    s->request_active.dec();
    s->target_processed_bytes.add(bytes);
  }
}

void Worker::http_finish_exchange(Exchange& ex) {
  if (ex.up != nullptr) {
    const bool reusable =
        ex.request_complete && ex.upstream_keep_alive && ex.framing != http::BodyFraming::kTunnel;
    http_release_upstream(ex, reusable);
  }
  http_end_exchange(ex);
  down_end_response(ex);
}

void Worker::http_cut(Exchange& ex) {
  if (ex.down->state == ConnState::kClosing) return;
  if (ex.up != nullptr) http_release_upstream(ex, false);
  http_end_exchange(ex);
  down_reset_response(ex);
}

void Worker::http_close_after_flush(Connection* c, bool clean) {
  HttpDown& h = *c->http;
  h.phase = DownPhase::kLingering;
  h.backlog.clear();
  if (c->state == ConnState::kClosing) return;
  // The response's last bytes and the close_notify leave in one send: the client is woken
  // once, and the FIN follows as soon as that send completes.
  if (c->down.tls) http_seal_staged(c);
  if (c->state == ConnState::kClosing) return;
  c->down.hold = false;
  c->down.shut_wanted = true;
  if (c->down.tls && clean) c->down.tls->shutdown();
  flush(c, c->down);
  if (c->down.eof && c->down.out.empty() && c->down.send_len == 0) {
    abort(c);
    return;
  }
  schedule_timer(c, now_ms_ + kLingerMs);
  // Keep reading (and discarding) until the client closes, so the close is not a reset.
  if (c->down.recv_paused) resume_recv(c, c->down);
  if (!c->down.recv_armed) arm_recv(c, c->down);
}

void Worker::http_arm_down_timer(Connection* c) {
  if (c->h2) {
    h2_arm_timer(c);
    return;
  }
  const http::HttpConfig& config = runtime_.config.http;
  uint64_t deadline = 0;
  auto ms = [](std::chrono::milliseconds d) { return static_cast<uint64_t>(d.count()); };
  if (!c->http) {  // idle, holding no HTTP state: the keep-alive idle timeout
    if (config.idle_timeout.count() > 0) {
      schedule_timer(c, c->last_activity_ms + ms(config.idle_timeout));
    } else {
      timers_.cancel(&c->timer.node);
    }
    return;
  }
  HttpDown& h = *c->http;
  switch (h.phase) {
    case DownPhase::kIdle:
      if (config.idle_timeout.count() > 0) deadline = h.idle_since_ms + ms(config.idle_timeout);
      break;
    case DownPhase::kHead:
      if (config.request_header_timeout.count() > 0) {
        deadline = h.head_start_ms + ms(config.request_header_timeout);
      } else if (config.idle_timeout.count() > 0) {
        deadline = c->last_activity_ms + ms(config.idle_timeout);
      }
      break;
    case DownPhase::kExchange:
      // Waiting for the response, the request timeout alone applies; while bytes flow
      // either way, the idle timeout too (whichever comes first).
      deadline = http_request_deadline(h.ex());
      if (config.idle_timeout.count() > 0 && (deadline == 0 || h.ex().response_started)) {
        const uint64_t idle = c->last_activity_ms + ms(config.idle_timeout);
        if (deadline == 0 || idle < deadline) deadline = idle;
      }
      break;
    case DownPhase::kTunnel:
      if (runtime_.config.tcp_idle_timeout.count() > 0) {
        deadline = c->last_activity_ms + ms(runtime_.config.tcp_idle_timeout);
      }
      break;
    case DownPhase::kLingering:
      return;  // scheduled by http_close_after_flush
  }
  if (deadline == 0) {
    timers_.cancel(&c->timer.node);
  } else {
    schedule_timer(c, deadline);
  }
}

void Worker::http_down_timer(Connection* c) {
  if (c->h2) {
    h2_timer(c);
    return;
  }
  ListenerStats& stats = lstats(c);
  const http::HttpConfig& config = runtime_.config.http;
  auto ms = [](std::chrono::milliseconds d) { return static_cast<uint64_t>(d.count()); };
  if (!c->http) {
    if (config.idle_timeout.count() > 0 &&
        now_ms_ >= c->last_activity_ms + ms(config.idle_timeout)) {
      stats.timeout_idle.add();
      abort(c);
      return;
    }
    http_arm_down_timer(c);
    return;
  }
  HttpDown& h = *c->http;
  switch (h.phase) {
    case DownPhase::kLingering:
      abort(c);
      return;
    case DownPhase::kIdle:
      if (config.idle_timeout.count() > 0 && now_ms_ >= h.idle_since_ms + ms(config.idle_timeout)) {
        stats.timeout_idle.add();
        abort(c);
        return;
      }
      break;
    case DownPhase::kHead:
      if (config.request_header_timeout.count() > 0 &&
          now_ms_ >= h.head_start_ms + ms(config.request_header_timeout)) {
        http_local_reply(http_exchange_of(c),
                         http::local_status(http::LocalCause::kRequestHeaderTimeout),
                         http::local_body(http::LocalCause::kRequestHeaderTimeout),
                         http::response_flag_for(http::LocalCause::kRequestHeaderTimeout), true);
        return;
      }
      if (config.idle_timeout.count() > 0 &&
          now_ms_ >= c->last_activity_ms + ms(config.idle_timeout)) {
        stats.timeout_idle.add();
        abort(c);
        return;
      }
      break;
    case DownPhase::kExchange: {
      Exchange& ex = h.ex();
      const uint64_t deadline = http_request_deadline(ex);
      if (deadline != 0 && now_ms_ >= deadline) {
        http_request_timed_out(ex);
        return;
      }
      if ((deadline == 0 || ex.response_started) && config.idle_timeout.count() > 0 &&
          now_ms_ >= c->last_activity_ms + ms(config.idle_timeout)) {
        stats.timeout_idle.add();
        h.ex().flags |= http::kFlagStreamIdleTimeout;
        abort(c);
        return;
      }
      break;
    }
    case DownPhase::kTunnel:
      if (runtime_.config.tcp_idle_timeout.count() > 0 &&
          now_ms_ >= c->last_activity_ms + ms(runtime_.config.tcp_idle_timeout)) {
        stats.timeout_idle.add();
        abort(c);
        return;
      }
      break;
  }
  http_arm_down_timer(c);
}

namespace {

uint64_t monotonic_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

}  // namespace

void Worker::http_lb_begin(Exchange& ex, cluster::Endpoint& endpoint) {
  ex.lb_load = ex.cluster->endpoints->begin_request(index_, endpoint);
  ex.lb_endpoint = &endpoint;
  // least-request counts only; p2c-ewma also times the attempt to its response head.
  ex.lb_start_us =
      ex.cluster->endpoints->lb_policy() == cluster::LbPolicy::kP2cEwma ? monotonic_us() : 0;
}

void Worker::http_lb_end(Exchange& ex, bool sample) {
  if (ex.lb_endpoint == nullptr) return;
  const uint64_t now_us = ex.lb_start_us != 0 ? monotonic_us() : 0;
  const int64_t latency_us =
      sample && ex.lb_start_us != 0 ? static_cast<int64_t>(now_us - ex.lb_start_us) : -1;
  ex.cluster->endpoints->end_request(index_, *ex.lb_endpoint, latency_us, now_us, ex.lb_load);
  ex.lb_endpoint = nullptr;
  ex.lb_start_us = 0;
  ex.lb_load = 0;
}

uint64_t Worker::http_request_deadline(const Exchange& ex, bool per_try) const {
  // --request-timeout runs from the end of the request to the end of the response; a
  // gRPC call's grpc-timeout from its start; --grpc-per-try-timeout from the later of the
  // attempt's start and the end of the request, until the response starts. The earliest
  // one applies.
  if (!ex.active || ex.response_complete) return 0;
  uint64_t deadline = ex.grpc_deadline_ms;
  auto earliest = [&deadline](uint64_t t) {
    if (deadline == 0 || t < deadline) deadline = t;
  };
  const http::HttpConfig& config = runtime_.config.http;
  if (ex.request_complete && config.request_timeout.count() > 0) {
    earliest(ex.request_complete_ms + static_cast<uint64_t>(config.request_timeout.count()));
  }
  if (per_try && ex.grpc && ex.request_complete && !ex.response_started &&
      config.grpc_per_try_timeout.count() > 0 && ex.try_start_ms != 0) {
    earliest(std::max(ex.try_start_ms, ex.request_complete_ms) +
             static_cast<uint64_t>(config.grpc_per_try_timeout.count()));
  }
  return deadline;
}

bool Worker::http_grpc_may_retry(const Exchange& ex) const {
  // The request held whole (all of it in the replay copy), nothing of the response sent
  // to the client, retries left.
  return ex.grpc && ex.request_complete && !ex.replay_overflow && !ex.response_started &&
         ex.retries < ex.max_retries && !stopping_ && ex.down->state != ConnState::kClosing;
}

bool Worker::http_grpc_retry_on_status(Exchange& ex, std::span<const http::Field> fields) {
  const http::Field* f = http::find_field(fields, "grpc-status");
  if (f == nullptr) return false;
  const auto status = grpc::parse_status(f->value);
  if (!status ||
      (runtime_.config.http.grpc_retry_on & (1u << static_cast<unsigned>(*status))) == 0 ||
      !http_grpc_may_retry(ex)) {
    return false;
  }
  RS_LOG_RATE_LIMITED(log::Level::kInfo, 2, "%s: gRPC attempt %u on %s ended %s; retrying",
                      listener_config(ex.down).config.name.c_str(), ex.retries + 1,
                      ex.upstream_address.c_str(), std::string(grpc::status_name(*status)).c_str());
  // Not reusable: an HTTP/1.1 upstream is still inside that response (its end is not
  // parsed yet); an HTTP/2 stream that already ended is only forgotten.
  http_release_upstream(ex, /*reusable=*/false);
  http_retry(ex, /*counted=*/true, /*replay=*/true, /*fresh_only=*/false);
  return true;
}

void Worker::http_grpc_release_head(Exchange& ex) {
  if (!ex.head_held) return;
  ex.head_held = false;
  http::ResponseHead head;
  head.status = ex.held_status;
  head.fields = ex.held_fields.fields();
  head.framing = http::Framing::kChunked;  // DATA frames until the end
  ex.response_started = true;
  const http::ResponsePlan plan = down_response_head(ex, head);
  ex.framing = plan.framing;
  ex.plan_close = plan.close;
}

void Worker::http_request_timed_out(Exchange& ex) {
  const uint64_t overall = http_request_deadline(ex, /*per_try=*/false);
  if ((overall == 0 || now_ms_ < overall) && http_grpc_may_retry(ex)) {
    // Only the attempt's time is up (--grpc-per-try-timeout): cancel it, try again.
    RS_LOG_RATE_LIMITED(log::Level::kInfo, 2, "%s: gRPC attempt %u on %s timed out; retrying",
                        listener_config(ex.down).config.name.c_str(), ex.retries + 1,
                        ex.upstream_address.c_str());
    ex.flags |= http::kFlagUpstreamRequestTimeout;
    http_release_upstream(ex, false);
    http_retry(ex, /*counted=*/true, /*replay=*/true, /*fresh_only=*/false);
    return;
  }
  if (http::HttpStats* s = http_listener_stats(ex.down)) s->request_timeout_count.add();
  if (http::HttpStats* s = http_service_stats(ex.cluster)) s->request_timeout_count.add();
  if (ex.response_started) {
    ex.flags |= http::response_flag_for(http::LocalCause::kRequestTimeout);
    ex.details = "request timeout after the response started";
    if (ex.grpc && ex.stream != 0) {
      // A gRPC call past its deadline ends with DEADLINE_EXCEEDED in trailers after what
      // the client has; the upstream stream is cancelled.
      static constexpr http::Field kDeadlineExceeded[] = {{"grpc-status", "4"},
                                                          {"grpc-message", "deadline exceeded"}};
      if (ex.up != nullptr) http_release_upstream(ex, false);
      down_end_body(ex, kDeadlineExceeded);
      ex.response_complete = true;
      http_end_exchange(ex);
      down_end_response(ex);
      return;
    }
    // Too late for a 504: the client sees the truncation (RST_STREAM on HTTP/2, the
    // connection cut without close_notify on HTTP/1.1), and the upstream is let go.
    http_cut(ex);
    return;
  }
  if (ex.up != nullptr) http_release_upstream(ex, false);
  http_local_reply(ex, http::local_status(http::LocalCause::kRequestTimeout),
                   http::local_body(http::LocalCause::kRequestTimeout),
                   http::response_flag_for(http::LocalCause::kRequestTimeout), false);
}

// ---- upstream -------------------------------------------------------------------------

void Worker::http_acquire_upstream(Exchange& ex, bool fresh_only) {
  Connection* c = ex.down;
  if (stopping_) {
    abort(c);
    return;
  }
  const ListenerRuntime& listener = listener_config(c);
  // Egress upstream connections carry TLS from this listener's client contexts: one made
  // with a context that has since been rotated out is dropped, not reused.
  const bool egress_tls = listener.config.kind == ListenerKind::kEgress && listener.tls != nullptr;
  const TlsGeneration* current = egress_tls ? listener.tls->load() : nullptr;
  // Load balancing is per request (as Envoy's): pick the endpoint first (round robin over
  // the ones this worker has not ejected), then reuse an idle connection to it if the
  // pool has one. Otherwise a pool would keep every request on the endpoints it happened
  // to connect to first, and an added endpoint would get nothing.
  cluster::Endpoint* endpoint = ex.cluster->endpoints->pick(index_, 0, nullptr, now_ms_);
  http_lb_end(ex, /*sample=*/false);  // a previous attempt's, if any
  if (endpoint != nullptr) http_lb_begin(ex, *endpoint);
  ex.try_start_ms = now_ms_;
  // HTTP/2 upstreams: a free stream on a connection to that endpoint, or a place among
  // those waiting for one coming up (h2_up.cc). A protocol switch needs HTTP/1.1.
  const bool h2_allowed = listener.upstream_h2 != ListenerRuntime::UpstreamH2::kNever &&
                          !ex.upgrade && ex.kind != http::RequestKind::kConnect;
  // (fresh_only is about pooled HTTP/1.1 connections, which may be stale: an HTTP/2
  // connection with a free stream is known to be alive.)
  if (h2_allowed && endpoint != nullptr && h2up_attach(ex, endpoint, current)) return;
  std::vector<Connection*>& pool = pools_[ex.pool];
  for (size_t i = pool.size(); endpoint != nullptr && !fresh_only && i-- > 0;) {
    Connection* u = pool[i];
    const bool usable = u->state == ConnState::kRelaying &&
                        !(egress_tls && u->tls_generation != current) &&
                        (u->endpoint == nullptr || u->endpoint->in_set());
    if (usable && u->endpoint != endpoint) continue;
    pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(i));
    u->hup->pooled = false;
    if (!usable) {
      abort(u);  // dead, made with a rotated-out context, or its endpoint left the service
      continue;
    }
    endpoint->release(index_);  // the pooled connection holds its endpoint already
    timers_.cancel(&u->timer.node);
    u->hup->owner = &ex;
    u->hup->reused = true;
    u->hup->got_bytes = false;
    ex.up = u;
    http_send_request(ex);
    return;
  }
  Connection* u = allocate(c->listener);
  u->kind = ConnKind::kHttpUp;
  u->hup = std::make_unique<HttpUp>(runtime_.http.limits);
  u->hup->cluster = ex.cluster;
  u->hup->pool = ex.pool;
  u->hup->owner = &ex;
  u->hup->h2_capable = h2_allowed && endpoint != nullptr;
  if (u->hup->h2_capable) h2_pools_[ex.pool].push_back(u);
  u->state = ConnState::kConnecting;
  u->endpoint = endpoint;  // held; null: the service has no endpoint (http_connect answers)
  ex.up = u;
  http_connect(u);
}

void Worker::http_connect(Connection* u) {
  HttpUp& hu = *u->hup;
  // The endpoint was picked by http_acquire_upstream (a retry acquires again, and round
  // robin gives it the next endpoint).
  if (u->endpoint == nullptr) {
    http_upstream_failed(u, http::RetryReason::kConnectFailure,
                         http::LocalCause::kNoHealthyUpstream);
    return;
  }
  const cluster::Endpoint& endpoint = *u->endpoint;
  if (hu.owner != nullptr) hu.owner->upstream_address = endpoint.text;
  ++u->attempts;
  u->state = ConnState::kConnecting;
  auto fd = net::make_client_socket(endpoint.address);
  if (!fd.ok()) {
    RS_LOG_RATE_LIMITED(log::Level::kWarn, 1, "%s: upstream socket: %s",
                        listener_config(u).config.name.c_str(),
                        std::strerror(fd.error().sys_errno));
    lstats(u).upstream_cx_connect_fail.add();
    http_upstream_failed(u, http::RetryReason::kConnectFailure,
                         http::LocalCause::kUpstreamConnectFailure);
    return;
  }
  u->up.fd = *fd;
  lstats(u).upstream_cx_total.add();
  if (http::HttpStats* s = http_listener_stats(u)) s->upstream_cx_total.add();
  if (http::HttpStats* s = http_service_stats(hu.cluster)) s->upstream_cx_total.add();
  ring_->connect(u->up.fd, endpoint.address.get(), endpoint.address.length,
                 Token{u->slot, u->gen, u->attempts, OpCode::kConnect}.pack());
  ++u->pending_ops;
  schedule_timer(u, now_ms_ + static_cast<uint64_t>(runtime_.config.connect_timeout.count()));
}

void Worker::http_on_connect(Connection* u, uint8_t attempt, const Completion& completion) {
  --u->pending_ops;
  if (u->state != ConnState::kConnecting || attempt != u->attempts) return;
  HttpUp& hu = *u->hup;
  const ListenerRuntime& listener = listener_config(u);
  if (completion.res < 0) {
    lstats(u).upstream_cx_connect_fail.add();
    RS_LOG_RATE_LIMITED(log::Level::kWarn, 2, "%s: connect to %s failed: %s",
                        listener.config.name.c_str(), u->endpoint->text.c_str(),
                        std::strerror(-completion.res));
    http_upstream_failed(u, http::RetryReason::kConnectFailure,
                         http::LocalCause::kUpstreamConnectFailure);
    return;
  }
  u->up.connected = true;
  u->upstream_counted = true;
  lstats(u).upstream_cx_active.inc();
  if (http::HttpStats* s = http_listener_stats(u)) s->upstream_cx_active.inc();
  if (http::HttpStats* s = http_service_stats(hu.cluster)) s->upstream_cx_active.inc();
  if (listener.config.kind == ListenerKind::kIngress || listener.tls == nullptr) {
    report_upstream_connect(u, true);
    http_upstream_ready(u);
    return;
  }
  // The listener's own service may carry san=/sni= overrides; a routed one is verified
  // and addressed by its service name.
  const bool own = hu.cluster == listener.cluster;
  // A request that must stay HTTP/1.1 (a protocol switch) offers only that.
  const bool h1_only = listener.upstream_h2 == ListenerRuntime::UpstreamH2::kAlpn && !hu.h2_capable;
  if (!start_upstream_tls(u, own ? listener.sni : hu.cluster->name,
                          own ? listener.verify_name : hu.cluster->name,
                          h1_only ? std::string_view("http/1.1") : std::string_view(),
                          own ? std::string_view(listener.verify_uri) : std::string_view())) {
    return;
  }
}

void Worker::http_upstream_ready(Connection* u) {
  HttpUp& hu = *u->hup;
  hu.ready = true;
  u->state = ConnState::kRelaying;
  timers_.cancel(&u->timer.node);
  arm_recv(u, u->up);
  if (hu.h2_capable) {
    const bool h2 = listener_config(u).upstream_h2 == ListenerRuntime::UpstreamH2::kPrior
                        ? !u->up.tls
                        : u->up.tls && u->up.tls->app_protocol() == tls::AppProtocol::kHttp2;
    if (h2) {
      h2up_start(u);
      return;
    }
    // The peer chose HTTP/1.1: the owner keeps the connection, those that waited find
    // their own.
    hu.h2_capable = false;
    std::vector<Connection*>& h2_pool = h2_pools_[hu.pool];
    h2_pool.erase(std::remove(h2_pool.begin(), h2_pool.end(), u), h2_pool.end());
    std::vector<Exchange*> waiters;
    waiters.swap(hu.waiters);
    for (Exchange* ex : waiters) {
      ex->up = nullptr;
      http_acquire_upstream(*ex, false);
    }
  }
  if (hu.owner == nullptr) {
    abort(u);
    return;
  }
  http_send_request(*hu.owner);
}

void Worker::http_retry(Exchange& ex, bool counted, bool replay, bool fresh_only) {
  if (counted) {
    ++ex.retries;
    if (http::HttpStats* s = http_listener_stats(ex.down)) s->request_retry_count.add();
    if (http::HttpStats* s = http_service_stats(ex.cluster)) s->request_retry_count.add();
  }
  // The next connection gets the head first: body bytes arriving meanwhile wait in
  // `pending` instead of going to a connection that has not seen the head.
  ex.head_sent = false;
  ex.head_held = false;  // the failed attempt's response head, never sent
  if (replay) {
    ex.pending.clear();
    ex.pending.append(ex.replay.data(), ex.replay.size());
    ex.replay.clear();
    ex.body_sent = false;
  }
  http_acquire_upstream(ex, fresh_only);
}

void Worker::http_send_request(Exchange& ex) {
  Connection* c = ex.down;
  Connection* u = ex.up;
  HttpUp& hu = *u->hup;
  ex.upstream_address = u->endpoint->text;
  if (hu.h2) {
    if (!h2up_send_head(ex)) return;  // the exchange was sent elsewhere or failed
  } else {
    hu.parser.expect_response_to(ex.kind);
    http_to_upstream(u, ex.head.data(), ex.head.size());
  }
  ex.head_sent = true;
  ex.sent_ms = now_ms_;
  while (!ex.pending.empty() && u->state != ConnState::kClosing) {
    std::span<const uint8_t> bytes = ex.pending.front();
    const size_t n = bytes.size();
    http_body_out(ex, std::string_view(reinterpret_cast<const char*>(bytes.data()), n));
    ex.pending.consume(n);
  }
  if (ex.request_complete && u->state != ConnState::kClosing) http_body_end(ex);
  if (ex.stream != 0) {
    h2_consume(ex);
    return;
  }
  if (c->down.recv_paused && http_upstream_queued(ex) <= runtime_.config.max_pending_bytes / 2 &&
      c->http->backlog.size() <= runtime_.config.max_pending_bytes / 2) {
    resume_recv(c, c->down);
  }
}

void Worker::http_up_data(Connection* u, std::string_view data) {
  HttpUp& hu = *u->hup;
  if (hu.h2) {
    h2up_data(u, data);
    return;
  }
  if (!data.empty()) hu.got_bytes = true;
  if (hu.owner == nullptr) {
    // Bytes on an idle pooled connection: nothing asked for them. Drop the connection.
    abort(u);
    return;
  }
  Exchange& ex = *hu.owner;
  Connection* c = ex.down;
  HttpDown* h = ex.stream == 0 ? c->http.get() : nullptr;  // null: an HTTP/2 stream
  c->last_activity_ms = now_ms_;
  if (h != nullptr && h->phase == DownPhase::kTunnel) {
    ex.bytes_sent += data.size();
    h1_send_body(ex, data);
    if (c->down.out.size() > runtime_.config.max_pending_bytes) pause_recv(u, u->up);
    return;
  }
  if (ex.response_complete) {
    // More bytes after a complete response, while the request body still flows: this
    // upstream is not reusable, and the exchange ends without it.
    ex.upstream_keep_alive = false;
    http_finish_exchange(ex);
    return;
  }
  size_t used = 0;
  while (u->state != ConnState::kClosing && c->state != ConnState::kClosing && hu.owner == &ex) {
    http::Step step = hu.parser.parse(data.substr(used));
    used += step.consumed;
    switch (step.event) {
      case http::Event::kNeedMore:
        // An HTTP/2 stream pauses its upstream in h2_send_body (its own queue).
        if (h != nullptr && c->down.out.size() > runtime_.config.max_pending_bytes) {
          pause_recv(u, u->up);
        }
        return;
      case http::Event::kHead:
        if (!http_response_head(ex, u, hu.parser.head())) return;
        break;
      case http::Event::kBody:
        ex.bytes_sent += step.body.size();
        down_body(ex, step.body);
        break;
      case http::Event::kMessageComplete:
        down_end_body(ex, hu.parser.trailers());
        // Bytes behind a complete response were never asked for: do not reuse.
        if (used < data.size()) ex.upstream_keep_alive = false;
        ex.response_complete = true;
        if (!ex.request_complete) {
          // An early response (nginx answering before it read the body, a 413): the
          // rest of the request body still goes to the upstream, which reads and drops
          // it, and the exchange ends with the request. With an upstream that will not
          // keep the connection there is nowhere to send the rest: the exchange ends now
          // and the client connection closes after the response (a lingering close
          // reads and drops the rest of the body).
          if (!ex.upstream_keep_alive || ex.plan_close) {
            http_finish_exchange(ex);
            return;
          }
          http_arm_down_timer(c);
          return;
        }
        http_finish_exchange(ex);
        return;
      case http::Event::kTunnel: {
        // 101 Switching Protocols (or a 2xx to CONNECT): from here on, raw bytes. An
        // HTTP/2 stream never asks for one (no Upgrade; CONNECT is refused), and
        // http_response_head refuses a switch nobody asked for.
        if (h == nullptr) {
          http_cut(ex);
          return;
        }
        h->phase = DownPhase::kTunnel;
        ex.framing = http::BodyFraming::kTunnel;
        ex.tunnel = true;
        ex.bytes_sent += data.size() - used;
        h1_send_body(ex, data.substr(used));
        if (!h->backlog.empty()) {
          ex.bytes_received += h->backlog.size();
          http_to_upstream(u, h->backlog.data(), h->backlog.size());
          h->backlog.clear();
        }
        if (c->down.recv_paused) resume_recv(c, c->down);
        http_arm_down_timer(c);
        return;
      }
      case http::Event::kError: {
        const http::ParseError& error = hu.parser.error();
        RS_LOG_RATE_LIMITED(log::Level::kWarn, 2, "%s: invalid response from %s: %.*s",
                            listener_config(c).config.name.c_str(), ex.upstream_address.c_str(),
                            static_cast<int>(error.reason.size()), error.reason.data());
        if (ex.response_started) {
          ex.flags |= http::kFlagUpstreamProtocolError;
          http_cut(ex);
          return;
        }
        http_upstream_failed(u, http::RetryReason::kOther,
                             http::LocalCause::kUpstreamProtocolError);
        return;
      }
    }
  }
}

bool Worker::http_response_head(Exchange& ex, Connection* u, const http::ResponseHead& head) {
  if (head.interim()) {
    down_response_head(ex, head);
    return true;
  }
  if (head.switches_protocol && !(ex.upgrade || ex.kind == http::RequestKind::kConnect)) {
    // A 101 nobody asked for: following it would turn a request into a tunnel.
    RS_LOG_RATE_LIMITED(log::Level::kWarn, 2, "%s: %s switched protocols unasked",
                        listener_config(ex.down).config.name.c_str(), ex.upstream_address.c_str());
    http_upstream_failed(u, http::RetryReason::kOther, http::LocalCause::kUpstreamProtocolError);
    return false;
  }
  ex.cluster->endpoints->report_response(index_, *u->endpoint, head.status, now_ms_);
  http_lb_end(ex, /*sample=*/true);
  if (head.status == 503 && !ex.response_started) {
    http::RetryAttempt attempt{ex.method, ex.body_sent, ex.retries, http::RetryReason::kStatus503};
    if (http::may_retry(attempt, ex.max_retries) != http::RetryVerdict::kNo && !stopping_) {
      if (http::HttpStats* s = http_service_stats(ex.cluster)) {
        s->http_code_target_5xx_count.add();
      }
      http_release_upstream(ex, false);
      http_retry(ex, /*counted=*/true, /*replay=*/false, /*fresh_only=*/false);
      return false;
    }
    if (ex.retries > 0) ex.flags |= http::kFlagUpstreamRetryLimitExceeded;
  }
  if (ex.grpc && head.status == 200 && http_grpc_retry_on_status(ex, head.fields)) {
    return false;  // a Trailers-Only answer with a status retried: sent again
  }
  ex.service_time_ms = static_cast<int64_t>(now_ms_ - ex.sent_ms);
  ex.status = head.status;
  ex.upstream_keep_alive = head.keep_alive;
  if (ex.grpc && head.status == 200 && ex.stream != 0 && http_grpc_may_retry(ex) &&
      runtime_.config.http.grpc_retry_on != 0 && !http::find_field(head.fields, "grpc-status")) {
    // Held until the first DATA (then sent: no retry after response bytes) or the end
    // (a status in the trailers may still be retried): http_grpc_release_head.
    ex.head_held = true;
    ex.held_status = head.status;
    ex.held_fields.clear();
    for (const http::Field& f : head.fields) ex.held_fields.add(f.name, f.value);
  } else {
    ex.response_started = true;
    const http::ResponsePlan plan = down_response_head(ex, head);
    ex.framing = plan.framing;
    ex.plan_close = plan.close;
  }
  const uint64_t service_ms = static_cast<uint64_t>(ex.service_time_ms);
  if (http::HttpStats* s = http_listener_stats(ex.down)) {
    s->record_target_response(head.status, service_ms);
  }
  if (http::HttpStats* s = http_service_stats(ex.cluster)) {
    s->record_target_response(head.status, service_ms);
  }
  http_arm_down_timer(ex.down);
  return true;
}

void Worker::http_up_eof(Connection* u) {
  HttpUp& hu = *u->hup;
  u->up.eof = true;
  if (hu.h2) {
    abort(u);  // every stream still open fails (h2up_on_abort)
    return;
  }
  if (hu.owner == nullptr) {
    abort(u);  // a pooled connection the upstream closed
    return;
  }
  if (u->state != ConnState::kRelaying) {
    // Closed during the TLS handshake.
    lstats(u).tls_handshake_failure.add();
    http_upstream_failed(u, http::RetryReason::kConnectFailure,
                         http::LocalCause::kUpstreamTlsFailure);
    return;
  }
  Exchange& ex = *hu.owner;
  Connection* c = ex.down;
  if (ex.stream == 0 && c->http->phase == DownPhase::kTunnel) {
    http_close_after_flush(c);
    if (c->state == ConnState::kClosing) return;
    if (c->down.eof) abort(u);
    return;
  }
  if (ex.response_complete) {
    // Closed after an early response, while the request body still flowed: the client
    // has its whole answer; the exchange ends without the upstream.
    ex.upstream_keep_alive = false;
    http_finish_exchange(ex);
    return;
  }
  http::Step step = hu.parser.finish();
  if (step.event == http::Event::kMessageComplete && ex.response_started) {
    down_end_body(ex, {});
    ex.upstream_keep_alive = false;
    http_finish_exchange(ex);
    return;
  }
  if (!ex.response_started) {
    abort(u);  // http_on_abort decides: retry, or 502 "upstream reset before response"
    return;
  }
  // The response was cut short after its head went out: the client must see it fail.
  ex.flags |= http::kFlagUpstreamConnectionTermination;
  http_cut(ex);
}

void Worker::http_upstream_failed(Connection* u, http::RetryReason reason, http::LocalCause cause) {
  // Every way an upstream connection can fail to come up (refused, timed out, TLS
  // rejected, reset or closed during the handshake) counts against its endpoint here,
  // once. Not when no socket could be made: that is this process's shortage.
  if (reason == http::RetryReason::kConnectFailure && u->up.fd >= 0) {
    report_upstream_connect(u, false);
  }
  if (cause == http::LocalCause::kUpstreamTlsFailure) {
    if (http::HttpStats* s = http_listener_stats(u)) s->upstream_tls_negotiation_errors.add();
    if (http::HttpStats* s = http_service_stats(u->hup->cluster)) {
      s->upstream_tls_negotiation_errors.add();
    }
  }
  Exchange* ex = u->hup->owner;
  u->hup->owner = nullptr;
  if (ex != nullptr) ex->up = nullptr;
  // Exchanges waiting for the connection (it might have spoken HTTP/2) share its fate.
  std::vector<Exchange*> waiters;
  waiters.swap(u->hup->waiters);
  for (Exchange* w : waiters) w->up = nullptr;
  if (u->state != ConnState::kClosing) abort(u);
  if (ex != nullptr) http_exchange_failed(*ex, reason, cause);
  for (Exchange* w : waiters) http_exchange_failed(*w, reason, cause);
}

void Worker::http_exchange_failed(Exchange& ex, http::RetryReason reason, http::LocalCause cause) {
  if (ex.down->state == ConnState::kClosing) return;
  if (ex.response_started) {
    http_cut(ex);
    return;
  }
  // A request whose body sent so far is still held (small) can be sent again when the
  // upstream never processed it: a reused connection that turns out to be closed (the
  // keep-alive race must not surface even for a POST), or an HTTP/2 stream refused or
  // above a GOAWAY's last stream. The rest of a body still arriving follows the replay.
  const bool replayable =
      ex.body_sent && !ex.replay_overflow && reason == http::RetryReason::kReusedConnectionClosed;
  http::RetryAttempt attempt{ex.method, ex.body_sent && !replayable, ex.retries, reason};
  http::RetryVerdict verdict = http::may_retry(attempt, ex.max_retries);
  if (verdict != http::RetryVerdict::kNo && !stopping_) {
    // A pooled connection the upstream had closed: the next try takes a fresh one.
    http_retry(ex, verdict == http::RetryVerdict::kRetry, replayable,
               reason == http::RetryReason::kReusedConnectionClosed);
    return;
  }
  uint32_t flags = http::response_flag_for(cause);
  if (ex.retries > 0 && retryable_reason(reason)) {
    flags |= http::kFlagUpstreamRetryLimitExceeded;
    if (http::HttpStats* s = http_listener_stats(ex.down)) s->request_retry_limit_exceeded.add();
    if (http::HttpStats* s = http_service_stats(ex.cluster)) {
      s->request_retry_limit_exceeded.add();
    }
  }
  http_local_reply(ex, http::local_status(cause), http::local_body(cause), flags, false);
}

void Worker::http_release_upstream(Exchange& ex, bool reusable) {
  http_lb_end(ex, /*sample=*/false);  // while the connection still holds the endpoint
  Connection* u = ex.up;
  if (u == nullptr) return;
  if (u->hup->h2 || (u->hup->h2_capable && !u->hup->ready)) {
    // A stream of a shared connection, or a place on one coming up: only that goes.
    h2up_detach(ex, reusable && ex.response_complete);
    return;
  }
  ex.up = nullptr;
  HttpUp& hu = *u->hup;
  hu.owner = nullptr;
  if (!reusable || u->state != ConnState::kRelaying || draining_ || u->up.eof || !hu.ready) {
    abort(u);
    return;
  }
  std::vector<Connection*>& pool = pools_[hu.pool];
  if (pool.size() >= kMaxPooled) {
    abort(u);
    return;
  }
  // Its recv may be paused by back-pressure from the last response: an idle pooled
  // connection must hear the upstream close it.
  if (u->up.recv_paused) resume_recv(u, u->up);
  pool.push_back(u);
  hu.pooled = true;
  if (hu.staged.empty()) free_buffer(hu.staged);
  hu.got_bytes = false;
  hu.idle_since_ms = now_ms_;
  const auto idle = runtime_.config.http.idle_timeout;
  if (idle.count() > 0) {
    schedule_timer(u, now_ms_ + static_cast<uint64_t>(idle.count()));
  } else {
    timers_.cancel(&u->timer.node);
  }
}

void Worker::http_up_timer(Connection* u) {
  HttpUp& hu = *u->hup;
  ListenerStats& stats = lstats(u);
  switch (u->state) {
    case ConnState::kConnecting:
      stats.timeout_connect.add();
      stats.upstream_cx_connect_fail.add();
      RS_LOG_RATE_LIMITED(log::Level::kWarn, 2, "%s: connect to %s timed out",
                          listener_config(u).config.name.c_str(), u->endpoint->text.c_str());
      http_upstream_failed(u, http::RetryReason::kConnectFailure,
                           http::LocalCause::kUpstreamConnectTimeout);
      return;
    case ConnState::kUpHandshake:
      stats.timeout_handshake.add();
      stats.tls_handshake_failure.add();
      http_upstream_failed(u, http::RetryReason::kConnectFailure,
                           http::LocalCause::kUpstreamTlsFailure);
      return;
    case ConnState::kRelaying:
      if (hu.pooled || (hu.h2 && hu.h2->streams.empty())) {
        stats.timeout_idle.add();
        abort(u);
      }
      return;
    default:
      return;
  }
}

void Worker::http_on_sent(Connection* c, Half& half) {
  flush(c, half);
  const uint64_t low = runtime_.config.max_pending_bytes / 2;
  if (c->kind == ConnKind::kHttpDown) {
    if (c->h2) {
      h2_on_sent(c);
      return;
    }
    if (!c->http) return;  // idle
    HttpDown& h = *c->http;
    Connection* u = h.ex_if_any() != nullptr ? h.ex_if_any()->up : nullptr;
    if (u != nullptr && u->hup->h2) {
      h2up_consume(*h.ex_if_any());  // the client drained: the stream's window opens
    } else if (u != nullptr && u->up.recv_paused && c->down.out.size() <= low) {
      resume_recv(u, u->up);
    }
    if (h.phase == DownPhase::kLingering && c->down.out.empty() && c->down.send_len == 0 &&
        c->down.eof) {
      abort(c);
    }
    return;
  }
  if (c->hup->h2) {
    // Frames held back while the upstream was not reading.
    if (c->up.out.size() <= low && c->hup->h2->session.wants_output()) h2up_mark_dirty(c);
    return;
  }
  Exchange* ex = c->hup->owner;
  if (ex == nullptr) return;
  if (ex->stream != 0) {
    h2_consume(*ex);  // the body drained upstream opens the stream's window
    return;
  }
  Connection* down = ex->down;
  if (down->down.recv_paused && c->up.out.size() <= low && down->http->backlog.size() <= low &&
      ex->pending.size() <= low) {
    resume_recv(down, down->down);
  }
}

void Worker::http_on_release(Connection* c) {
  if (c->h2) h2_on_release(c);
  if (c->kind == ConnKind::kHttpUp && c->hup->h2) {
    h2up_report(c);
    lstats(c).h2_upstream_cx_active.dec();
  }
  if (c->kind != ConnKind::kHttpUp || !c->upstream_counted) return;
  if (http::HttpStats* s = http_listener_stats(c)) s->upstream_cx_active.dec();
  if (http::HttpStats* s = http_service_stats(c->hup->cluster)) s->upstream_cx_active.dec();
}

void Worker::http_on_abort(Connection* c) {
  if (c->kind == ConnKind::kHttpUp && c->hup->h2) {
    h2up_on_abort(c);
    return;
  }
  if (c->kind == ConnKind::kHttpUp) {
    HttpUp& hu = *c->hup;
    if (hu.h2_capable) {
      std::vector<Connection*>& h2_pool = h2_pools_[hu.pool];
      h2_pool.erase(std::remove(h2_pool.begin(), h2_pool.end(), c), h2_pool.end());
    }
    if (hu.pooled) {
      std::vector<Connection*>& pool = pools_[hu.pool];
      for (size_t i = 0; i < pool.size(); ++i) {
        if (pool[i] == c) {
          pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(i));
          break;
        }
      }
      hu.pooled = false;
    }
    if (hu.owner == nullptr && hu.waiters.empty()) return;
    if (hu.owner == nullptr) {
      // Only exchanges waiting for it to come up (it never did).
      http_upstream_failed(c, http::RetryReason::kConnectFailure,
                           c->state == ConnState::kUpHandshake || c->up.tls
                               ? http::LocalCause::kUpstreamTlsFailure
                               : http::LocalCause::kUpstreamConnectFailure);
      return;
    }
    Exchange& ex = *hu.owner;
    if (ex.tunnel) {
      // A tunnel's end: a clean one (the app closed after the client, or closed first and
      // the client's side is closing after what is queued) is not a failure; a reset is.
      ex.up = nullptr;
      hu.owner = nullptr;
      if (!c->up.eof) ex.flags |= http::kFlagUpstreamConnectionTermination;
      http_end_exchange(ex);
      Connection* d = ex.down;
      if (d->state != ConnState::kClosing && d->http->phase != DownPhase::kLingering) {
        http_close_after_flush(d, c->up.eof);
      }
      return;
    }
    if (ex.response_complete) {
      // Gone while the rest of an answered request's body was flowing: nothing is lost,
      // and the exchange ends without it.
      ex.up = nullptr;
      hu.owner = nullptr;
      http_finish_exchange(ex);
      return;
    }
    // Lost while serving an exchange: decide for the exchange as if it had failed.
    http::RetryReason reason;
    http::LocalCause cause;
    if (!hu.ready) {
      reason = http::RetryReason::kConnectFailure;
      cause = c->state == ConnState::kUpHandshake || c->up.tls
                  ? http::LocalCause::kUpstreamTlsFailure
                  : http::LocalCause::kUpstreamConnectFailure;
    } else if (!hu.got_bytes) {
      reason = hu.reused ? http::RetryReason::kReusedConnectionClosed
                         : http::RetryReason::kResetBeforeResponse;
      cause = http::LocalCause::kUpstreamReset;
    } else {
      reason = http::RetryReason::kOther;
      cause = http::LocalCause::kUpstreamReset;
    }
    if (!ex.response_started) ex.flags |= http::kFlagUpstreamConnectionTermination;
    http_upstream_failed(c, reason, cause);
    return;
  }
  if (c->h2) {
    h2_on_abort(c);
    return;
  }
  if (!c->http) return;  // idle
  HttpDown& h = *c->http;
  if (Exchange* ex = h.ex_if_any(); ex != nullptr && ex->up != nullptr) {
    http_release_upstream(*ex, false);  // its answer is unwanted: not reusable
  }
  if (h.exchange_active()) {
    // The client closing a tunnel is how a tunnel ends; closing an exchange is not.
    if (h.client_eof && !h.ex().tunnel) {
      h.ex().flags |= http::kFlagDownstreamConnectionTermination;
    }
    http_end_exchange(h.ex());
  }
}

void Worker::http_drain() {
  // Idle keep-alive connections close now; a response in progress carries
  // Connection: close and its connection closes after it.
  for (size_t i = 0; i < slots_.size(); ++i) {
    Connection* c = slots_[i].get();
    if (c == nullptr || c->state == ConnState::kClosing) continue;
    if (c->kind == ConnKind::kHttpUp && c->hup->pooled) {
      abort(c);
    } else if (c->kind == ConnKind::kHttpUp && c->hup->h2) {
      c->hup->h2->going_away = true;  // no new streams; closes when its last one ends
      h2up_settle(c);
    } else if (c->h2) {
      h2_drain(c);  // the two-step GOAWAY; open streams finish
    } else if (c->kind == ConnKind::kHttpDown && c->state != ConnState::kDownHandshake &&
               (!c->http || c->http->phase == DownPhase::kIdle)) {
      abort(c);
    }
  }
}

}  // namespace ringside::proxy
