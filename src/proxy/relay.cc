// The per-connection half of the worker: accept -> (TLS handshake) -> connect ->
// (TLS handshake) -> relay both ways with back-pressure and half-close -> close.
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "net/socket.h"
#include "proxy/worker.h"
#include "ringside/address.h"
#include "ringside/log.h"

namespace ringside::proxy {
namespace {

constexpr size_t kPlainChunk = 16 * 1024;
// Upper bound of one send: what a loopback socket buffer takes at once, roughly.
constexpr size_t kMaxSendBytes = 256 * 1024;

const char* half_name(const Half& half) {
  return half.id == HalfId::kDown ? "downstream" : "upstream";
}

// "10.0.0.5:40312", for the log lines of failures only (one getpeername(2) each).
std::string peer_text(int fd) {
  SocketAddress address;
  address.length = sizeof(address.storage);
  if (fd < 0 ||
      ::getpeername(fd, reinterpret_cast<sockaddr*>(&address.storage), &address.length) != 0) {
    return "an unknown address";
  }
  return address.to_string();
}

// The handshake's check of a client's verified certificate (tls::PeerCheck): the identity
// is extracted and matched against the listener's policy here, once per connection.
bool admit_client(void* arg, const tls::CertInfo& leaf, bool verified) {
  auto* auth = static_cast<PeerAuth*>(arg);
  const authz::PeerIdentity identity{leaf.dns_sans, leaf.uri_sans};
  if (!verified) {
    // Before any signature is checked (set_peer_check's early check): only a refusal
    // counts here, and the identity is kept for the log line of the refusal.
    if (authz::grant(*auth->policy, identity).connection_allowed) return true;
    auth->identity = authz::describe(identity);
    return false;
  }
  auth->verified = true;
  auth->identity = authz::describe(identity);
  if (auth->xfcc_wanted) {
    auth->xfcc.clear();
    authz::append_xfcc(auth->by, leaf.sha256_hex, identity, auth->xfcc);
  }
  if (auth->policy == nullptr) return true;
  auth->grant = authz::grant(*auth->policy, identity);
  return auth->grant.connection_allowed || auth->policy->mode == authz::Mode::kAudit;
}

}  // namespace

uint64_t Worker::token(const Connection* c, const Half& half, OpCode op) const {
  return Token{c->slot, c->gen, static_cast<uint8_t>(half.id), op}.pack();
}

Connection* Worker::allocate(uint32_t listener) {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  auto c = std::make_unique<Connection>();
  c->slot = slot;
  // The generation survives reuse of the slot, so stale completions are recognised.
  if (slot_gen_.size() <= slot) slot_gen_.resize(slot + 1, 0);
  c->gen = ++slot_gen_[slot];
  c->listener = static_cast<uint16_t>(listener);
  c->down.id = HalfId::kDown;
  c->up.id = HalfId::kUp;
  c->timer.connection = c.get();
  c->last_activity_ms = now_ms_;
  slots_[slot] = std::move(c);
  ++live_;
  return slots_[slot].get();
}

Connection* Worker::lookup(const Token& t) {
  if (t.slot >= slots_.size()) return nullptr;
  Connection* c = slots_[t.slot].get();
  if (c == nullptr || c->gen != t.gen) return nullptr;
  return c;
}

void Worker::release(Connection* c) {
  timers_.cancel(&c->timer.node);
  // Every operation on these descriptors has completed: closing cannot race with one.
  // The close completion carries no connection (OpCode::kNone).
  for (Half* half : {&c->down, &c->up}) {
    if (half->fd >= 0) ring_->close(half->fd, 0);
    half->fd = -1;
  }
  ListenerStats& stats = lstats(c);
  if (c->kind != ConnKind::kHttpUp) stats.cx_active.dec();
  if (c->upstream_counted) stats.upstream_cx_active.dec();
  if (c->kind != ConnKind::kTcp) http_on_release(c);
  uint32_t slot = c->slot;
  const TlsGeneration* generation = c->tls_generation;
  cluster::Endpoint* endpoint = c->endpoint;
  slots_[slot].reset();
  // Only now that the TLS session is gone may the generation be reclaimed.
  if (generation != nullptr) generation->release(index_);
  if (endpoint != nullptr) endpoint->release(index_);
  free_slots_.push_back(slot);
  --live_;
}

void Worker::schedule_timer(Connection* c, uint64_t deadline_ms) {
  timers_.schedule(&c->timer.node, deadline_ms);
}

void Worker::start_ingress(Connection* c) {
  ListenerRuntime& listener = listener_config(c);
  const TlsGeneration* generation = listener.tls->load();
  c->tls_generation = generation;
  if (generation != nullptr) {
    generation->hold(index_);  // released in release(), after the session is freed
    c->down.tls =
        std::make_unique<tls::TlsSession>(generation->context->ctx(index_), tls::Role::kServer);
  } else {
    // No certificate yet, but an ACME tls-alpn-01 validation may be under way (on_accept).
    c->down.tls = tls::TlsSession::for_acme_challenge(index_);
    if (!c->down.tls) {
      lstats(c).cx_no_certificate.add();
      abort(c);
      return;
    }
  }
  if (c->down.tls->broken()) {
    lstats(c).tls_handshake_failure.add();
    RS_LOG_RATE_LIMITED(log::Level::kWarn, 1, "%s: cannot create a TLS session (out of memory)",
                        listener.config.name.c_str());
    abort(c);
    return;
  }
  c->down.tls->set_output(&c->down.out);
  if (listener.needs_identity) {
    c->auth = std::make_unique<PeerAuth>();
    PeerAuth& auth = *c->auth;
    if (listener.config.authz.active()) auth.policy = &listener.config.authz;
    auth.xfcc_wanted = listener.xfcc;
    if (generation != nullptr && !generation->context->cert().uri_sans.empty()) {
      auth.by = generation->context->cert().uri_sans.front();
    }
    // An enforced allow-list refuses an identity before its certificate's signatures are
    // checked (the connection then costs what an unknown CA costs); audit mode and
    // header-only listeners decide on the verified leaf alone.
    const bool early = auth.policy != nullptr && auth.policy->has_allow &&
                       auth.policy->mode != authz::Mode::kAudit;
    c->down.tls->set_peer_check(admit_client, &auth, early);
  }
  c->sniffing = listener.config.permissive;
  c->state = ConnState::kDownHandshake;
  schedule_timer(c, now_ms_ + static_cast<uint64_t>(runtime_.config.handshake_timeout.count()));
  arm_recv(c, c->down);
}

void Worker::start_plaintext_ingress(Connection* c) {
  // No byte was written by the TLS session yet (a server speaks after the ClientHello).
  c->plaintext = true;
  c->down.tls.reset();
  c->down.out.clear();
  lstats(c).plaintext_cx_total.add();
  timers_.cancel(&c->timer.node);
  if (c->kind == ConnKind::kHttpDown) {
    c->state = ConnState::kRelaying;  // the bytes about to be processed are HTTP
    http_arm_down_timer(c);
    return;
  }
  start_connect(c);  // TCP: the app, as after a handshake; the bytes wait for it
}

void Worker::report_upstream_connect(Connection* c, bool ok) {
  if (c->endpoint == nullptr) return;  // ingress TCP: the app is not a cluster endpoint
  const Cluster* target =
      c->kind == ConnKind::kHttpUp ? c->hup->cluster : listener_config(c).cluster;
  target->endpoints->report_connect(index_, *c->endpoint, ok, now_ms_);
}

void Worker::start_connect(Connection* c) {
  ListenerRuntime& listener = listener_config(c);
  const SocketAddress* address;
  if (listener.config.kind == ListenerKind::kIngress) {
    address = &listener.config.target;
  } else {
    // Round robin over the endpoints this worker has not ejected; a retry takes the next.
    cluster::Endpoint* next =
        listener.cluster->endpoints->pick(index_, c->attempts, c->endpoint, now_ms_);
    if (c->endpoint != nullptr) c->endpoint->release(index_);
    c->endpoint = next;
    if (next == nullptr) {
      if (c->attempts == 0) {
        lstats(c).upstream_cx_connect_fail.add();
        RS_LOG_RATE_LIMITED(log::Level::kWarn, 1, "%s: service %s has no endpoint",
                            listener.config.name.c_str(), listener.config.service.c_str());
      }
      abort(c);  // no endpoint, or every attempt made
      return;
    }
    address = &next->address;
  }
  ++c->attempts;
  c->state = ConnState::kConnecting;
  auto fd = net::make_client_socket(*address);
  if (!fd.ok()) {
    RS_LOG_RATE_LIMITED(log::Level::kWarn, 1, "%s: upstream socket: %s",
                        listener.config.name.c_str(), std::strerror(fd.error().sys_errno));
    lstats(c).upstream_cx_connect_fail.add();
    abort(c);
    return;
  }
  c->up.fd = *fd;
  lstats(c).upstream_cx_total.add();
  // The side byte carries the attempt number, so the completion of an abandoned
  // (timed-out) attempt is told apart from the current one.
  ring_->connect(c->up.fd, address->get(), address->length,
                 Token{c->slot, c->gen, c->attempts, OpCode::kConnect}.pack());
  ++c->pending_ops;
  schedule_timer(c, now_ms_ + static_cast<uint64_t>(runtime_.config.connect_timeout.count()));
}

void Worker::on_connect(Connection* c, uint8_t attempt, const Completion& completion) {
  if (c->kind == ConnKind::kHttpUp) {
    http_on_connect(c, attempt, completion);
    return;
  }
  --c->pending_ops;
  // Closing, or the completion of an attempt that timed out and was replaced.
  if (c->state != ConnState::kConnecting || attempt != c->attempts) return;
  ListenerRuntime& listener = listener_config(c);
  if (completion.res < 0) {
    int err = -completion.res;
    lstats(c).upstream_cx_connect_fail.add();
    report_upstream_connect(c, false);
    const SocketAddress& address =
        c->endpoint != nullptr ? c->endpoint->address : listener.config.target;
    RS_LOG_RATE_LIMITED(log::Level::kWarn, 2, "%s: connect to %s failed: %s",
                        listener.config.name.c_str(), address.to_string().c_str(),
                        std::strerror(err));
    ring_->close(c->up.fd, 0);
    c->up.fd = -1;
    if (listener.config.kind == ListenerKind::kEgress && !stopping_) {
      start_connect(c);  // the next endpoint, while attempts are left
      return;
    }
    abort(c);
    return;
  }
  c->up.connected = true;
  c->upstream_counted = true;
  lstats(c).upstream_cx_active.inc();
  if (listener.config.kind == ListenerKind::kIngress || listener.tls == nullptr) {
    report_upstream_connect(c, true);
    c->state = ConnState::kRelaying;
    schedule_timer(c, now_ms_ + static_cast<uint64_t>(runtime_.config.tcp_idle_timeout.count()));
    arm_recv(c, c->up);
    if (!c->down.recv_armed && !c->down.eof) arm_recv(c, c->down);
    flush(c, c->up);
    return;
  }
  // Egress: TLS to the upstream. Not a byte of the client's is read before the
  // upstream's certificate has been verified.
  start_upstream_tls(c, listener.sni, listener.verify_name, {}, listener.verify_uri);
}

bool Worker::start_upstream_tls(Connection* c, const std::string& sni,
                                const std::string& verify_name, std::string_view alpn,
                                std::string_view verify_uri) {
  ListenerRuntime& listener = listener_config(c);
  const TlsGeneration* generation = listener.tls->load();
  c->tls_generation = generation;
  generation->hold(index_);  // released in release(), after the session is freed
  c->up.tls = std::make_unique<tls::TlsSession>(generation->context->ctx(index_),
                                                tls::Role::kClient, sni, verify_name, verify_uri);
  if (c->up.tls->broken()) {
    lstats(c).tls_handshake_failure.add();
    RS_LOG_RATE_LIMITED(log::Level::kWarn, 1, "%s: cannot create a TLS session (out of memory)",
                        listener.config.name.c_str());
    abort(c);
    return false;
  }
  if (!alpn.empty() && !c->up.tls->offer_alpn(alpn)) {
    lstats(c).tls_handshake_failure.add();
    abort(c);
    return false;
  }
  c->up.tls->set_output(&c->up.out);
  c->state = ConnState::kUpHandshake;
  schedule_timer(c, now_ms_ + static_cast<uint64_t>(runtime_.config.handshake_timeout.count()));
  tls::TlsStatus status = c->up.tls->handshake();
  if (status == tls::TlsStatus::kError) {
    on_handshake_failed(c, c->up);
    return false;
  }
  arm_recv(c, c->up);
  flush(c, c->up);
  return true;
}

void Worker::arm_recv(Connection* c, Half& half) {
  if (half.recv_armed || half.eof || half.fd < 0 || c->state == ConnState::kClosing) return;
  ring_->recv_multishot(half.fd, token(c, half, OpCode::kRecv));
  half.recv_armed = true;
  half.recv_paused = false;
  ++c->pending_ops;
}

void Worker::pause_recv(Connection* c, Half& half) {
  if (!half.recv_armed || half.recv_paused) return;
  half.recv_paused = true;
  if (half.cancel_sent) return;  // the earlier cancel still ends this recv
  half.cancel_sent = true;
  ring_->cancel(token(c, half, OpCode::kRecv), token(c, half, OpCode::kCancel));
  ++c->pending_ops;
}

void Worker::resume_recv(Connection* c, Half& half) {
  if (!half.recv_paused) return;
  half.recv_paused = false;
  // A recv still armed is being cancelled: its last completion re-arms (on_recv).
  if (!half.recv_armed) arm_recv(c, half);
}

void Worker::on_recv(Connection* c, Half& half, const Completion& completion) {
  bool cancelled = false;
  if (!completion.more) {
    half.recv_armed = false;
    --c->pending_ops;
    cancelled = half.cancel_sent;
    half.cancel_sent = false;
  }
  if (completion.res > 0) {
    const uint8_t* data = ring_->buffer(static_cast<uint16_t>(completion.buffer_id));
    size_t len = static_cast<size_t>(completion.res);
    if (half.id == HalfId::kDown) {
      lstats(c).downstream_bytes_rx.add(len);
    } else {
      lstats(c).upstream_bytes_rx.add(len);
    }
    c->last_activity_ms = now_ms_;
    if (c->sniffing && half.id == HalfId::kDown && c->state == ConnState::kDownHandshake) {
      // tls=permissive: a TLS record starts with its content type, 22 for a handshake;
      // anything else is a plaintext client, served without TLS from here on.
      c->sniffing = false;
      if (data[0] != 0x16) start_plaintext_ingress(c);
    }
    if (c->state != ConnState::kClosing) {
      if (c->kind == ConnKind::kTcp) {
        process_input(c, half, data, len);
      } else {
        http_input(c, half, data, len);
      }
    }
    ring_->recycle(static_cast<uint16_t>(completion.buffer_id));
    if (!completion.more && !half.recv_paused && c->state != ConnState::kClosing) {
      arm_recv(c, half);
    }
    return;
  }
  if (completion.buffer_id >= 0) ring_->recycle(static_cast<uint16_t>(completion.buffer_id));
  if (c->state == ConnState::kClosing) return;
  if (completion.res == 0) {
    if (c->kind == ConnKind::kTcp) {
      on_eof(c, half);
    } else if (c->kind == ConnKind::kHttpDown) {
      http_down_eof(c);
    } else {
      http_up_eof(c);
    }
    return;
  }
  int err = -completion.res;
  if (err == ENOBUFS) {
    // The provided-buffer ring is empty: back-pressure for the whole worker. Re-arm once
    // buffers come back.
    stats_->buffer_exhausted.add();
    starved_.push_back(token(c, half, OpCode::kRecv));
    return;
  }
  if (err == ECANCELED) {
    if (!cancelled && !half.recv_paused) {
      abort(c);
    } else if (!half.recv_paused) {
      arm_recv(c, half);  // resumed while the cancel was in flight
    }
    return;
  }
  if (err == EINTR || err == EAGAIN) {
    arm_recv(c, half);
    return;
  }
  lstats(c).cx_reset.add();
  RS_DEBUG("%s: %s recv: %s", listener_config(c).config.name.c_str(), half_name(half),
           std::strerror(err));
  if (c->state == ConnState::kDownHandshake && half.tls && half.tls->peer_sent_nothing()) {
    lstats(c).tls_closed_before_hello_total.add();  // a health check that resets
  }
  if (half.id == HalfId::kUp) report_reset_in_upstream_handshake(c);  // not the client's
  abort(c);
}

void Worker::report_reset_in_upstream_handshake(Connection* c) {
  if (c->kind == ConnKind::kTcp && c->state == ConnState::kUpHandshake) {
    // Reset during the TLS handshake: a failed attempt on that endpoint, for outlier
    // detection as much as a refused connect. Seen by the receive or, when the reset
    // comes before the ClientHello leaves, by its send. (HTTP reports through
    // http_upstream_failed.)
    lstats(c).tls_handshake_failure.add();
    report_upstream_connect(c, false);
  }
}

bool Worker::advance_handshake(Connection* c, Half& in) {
  tls::TlsSession& session = *in.tls;
  if (session.handshake_done()) return true;
  tls::TlsStatus status = session.handshake();
  if (status == tls::TlsStatus::kError) {
    on_handshake_failed(c, in);
    return false;
  }
  if (status == tls::TlsStatus::kWantRead) {
    flush(c, in);
    return false;
  }
  on_handshake_done(c, in);
  return c->state != ConnState::kClosing;
}

void Worker::process_input(Connection* c, Half& in, const uint8_t* data, size_t len) {
  Half& out = c->other(in);
  if (in.tls) {
    tls::TlsSession& session = *in.tls;
    session.set_input(data, len);
    if (!advance_handshake(c, in)) return;
    while (true) {
      size_t n = 0;
      tls::TlsStatus status;
      if (out.tls) {
        uint8_t plain[kPlainChunk];
        status = session.read(plain, sizeof(plain), &n);
        if (status == tls::TlsStatus::kOk && out.tls->write(plain, n) != tls::TlsStatus::kOk) {
          abort(c);
          return;
        }
      } else {
        std::span<uint8_t> space = out.out.reserve();
        status = session.read(space.data(), space.size(), &n);
        if (status == tls::TlsStatus::kOk) out.out.commit(n);
      }
      if (status == tls::TlsStatus::kOk) continue;
      if (status == tls::TlsStatus::kWantRead) break;
      if (status == tls::TlsStatus::kClosed) {
        flush(c, in);
        flush(c, out);
        on_eof(c, in);
        return;
      }
      RS_LOG_RATE_LIMITED(log::Level::kInfo, 2, "%s: %s TLS error: %s",
                          listener_config(c).config.name.c_str(), half_name(in),
                          session.error_detail().c_str());
      lstats(c).cx_reset.add();
      abort(c);
      return;
    }
  } else if (out.tls) {
    if (out.tls->write(data, len) != tls::TlsStatus::kOk) {
      abort(c);
      return;
    }
  } else {
    out.out.append(data, len);
  }
  out.hold = false;  // a reply: whatever waited for one leaves with it
  flush(c, out);
  flush(c, in);
  if (out.out.size() > runtime_.config.max_pending_bytes) pause_recv(c, in);
}

void Worker::on_handshake_done(Connection* c, Half& half) {
  lstats(c).tls_handshake_success.add();
  if (half.id == HalfId::kDown && half.tls && half.tls->acme_challenge()) {
    // RFC 8737 3: the handshake is the whole answer to a tls-alpn-01 validation; the
    // validator closes. What wolfSSL queued (TLS 1.2's Finished) leaves first.
    RS_INFO("%s: answered an ACME tls-alpn-01 validation from %s",
            listener_config(c).config.name.c_str(), peer_text(c->down.fd).c_str());
    half.tls->shutdown();
    half.shut_wanted = true;
    flush(c, half);
    return;
  }
  if (c->auth && c->auth->policy != nullptr && half.id == HalfId::kDown &&
      !authorize_connection(c)) {
    return;
  }
  if (c->kind == ConnKind::kHttpDown) {
    // Ingress HTTP: the client chose HTTP/2 with ALPN (the server preface goes out now),
    // or HTTP/1.1 (wait for the first request; an h2 preface still switches).
    c->state = ConnState::kRelaying;
    if (half.tls && half.tls->app_protocol() == tls::AppProtocol::kHttp2) {
      h2_start(c);
      return;
    }
    // As on a TCP ingress (below): the NewSessionTicket waits for the reply to a request
    // that came with the client's Finished, and leaves with it.
    hold_ticket(c, half);
    http_arm_down_timer(c);
    return;
  }
  if (c->kind == ConnKind::kHttpUp) {
    report_upstream_connect(c, true);
    http_upstream_ready(c);
    return;
  }
  if (half.id == HalfId::kDown) {
    // Ingress: the client is authenticated as far as the listener asks; now reach the app.
    // TLS 1.3: what wolfSSL queued at the end of the handshake is the NewSessionTicket
    // (the server Finished went out with the first flight). It waits for the app's first
    // bytes and leaves in the same send: one send (and one wake-up of the client) less
    // per connection. Nothing waits on a ticket; a client that ends first gets it with
    // the close_notify. (In TLS 1.2 the server Finished is queued here: never held.)
    hold_ticket(c, half);
    start_connect(c);
    return;
  }
  report_upstream_connect(c, true);
  c->state = ConnState::kRelaying;
  schedule_timer(c, now_ms_ + static_cast<uint64_t>(runtime_.config.tcp_idle_timeout.count()));
  arm_recv(c, c->down);
  flush(c, c->up);
}

bool Worker::authorize_connection(Connection* c) {
  const PeerAuth& auth = *c->auth;
  ListenerStats& stats = lstats(c);
  const ListenerRuntime& listener = listener_config(c);
  if (!auth.policy->has_allow) return true;
  if (auth.verified && auth.grant.connection_allowed) {
    stats.authz_cx_allowed.add();
    return true;
  }
  if (auth.verified && auth.policy->mode == authz::Mode::kAudit) {
    stats.authz_cx_would_deny.add();
    RS_LOG_RATE_LIMITED(
        log::Level::kInfo, 2, "%s: authz=audit: would refuse client %s: identity %s not allowed",
        listener.config.name.c_str(), peer_text(c->down.fd).c_str(), auth.identity.c_str());
    return true;
  }
  // No certificate was verified in this handshake (the context issues no tickets, so this
  // is not expected): without an identity nothing is allowed.
  stats.authz_cx_denied.add();
  RS_LOG_RATE_LIMITED(log::Level::kInfo, 2, "%s: refused client %s: no verified identity",
                      listener.config.name.c_str(), peer_text(c->down.fd).c_str());
  abort(c);
  return false;
}

void Worker::hold_ticket(Connection* c, Half& half) {
  half.hold = half.tls && half.tls->tls13() && !half.out.empty();
  if (half.hold) ticket_holds_.push_back(c);
}

void Worker::release_idle_ticket_holds() {
  // A held ticket waits only for the reply to a request the client already sent (with
  // its Finished, or just after it in the same turn): a client that sent nothing gets
  // it now rather than keep a chunk allocated for as long as it stays idle.
  for (Connection* c : ticket_holds_) {
    if (c->state == ConnState::kClosing || !c->down.hold) continue;
    if (c->kind == ConnKind::kHttpDown ? c->http && c->http->exchange_active()
                                       : !c->up.out.empty() || c->up.send_len != 0) {
      continue;
    }
    c->down.hold = false;
    flush(c, c->down);
  }
  ticket_holds_.clear();
}

void Worker::on_handshake_failed(Connection* c, Half& half) {
  ListenerStats& stats = lstats(c);
  const tls::TlsSession& session = *half.tls;
  if (session.peer_refused()) {
    // Refused by the listener's allow-list: counted and logged as that, not as a failure.
    stats.authz_cx_denied.add();
    RS_LOG_RATE_LIMITED(log::Level::kInfo, 2, "%s: refused client %s: identity %s not allowed",
                        listener_config(c).config.name.c_str(), peer_text(half.fd).c_str(),
                        c->auth ? c->auth->identity.c_str() : "-");
    flush(c, half);
    abort(c);
    return;
  }
  stats.tls_handshake_failure.add();
  if (session.error_kind() == ErrorKind::kVerify) stats.tls_verify_failure.add();
  if (c->kind == ConnKind::kHttpUp) {
    RS_LOG_RATE_LIMITED(log::Level::kWarn, 2, "%s: TLS handshake with upstream %s failed: %s",
                        listener_config(c).config.name.c_str(), c->endpoint->text.c_str(),
                        session.error_detail().c_str());
    flush(c, half);
    http_upstream_failed(c, http::RetryReason::kConnectFailure,
                         http::LocalCause::kUpstreamTlsFailure);
    return;
  }
  if (half.id == HalfId::kUp) {
    RS_LOG_RATE_LIMITED(log::Level::kWarn, 2, "%s: TLS handshake with upstream %s failed: %s",
                        listener_config(c).config.name.c_str(), c->endpoint->text.c_str(),
                        session.error_detail().c_str());
  } else {
    RS_LOG_RATE_LIMITED(log::Level::kInfo, 2, "%s: TLS handshake from %s failed: %s",
                        listener_config(c).config.name.c_str(), peer_text(half.fd).c_str(),
                        session.error_detail().c_str());
  }
  if (half.id == HalfId::kUp) report_upstream_connect(c, false);
  // Send the alert wolfSSL queued, then close (the send completes before release).
  flush(c, half);
  abort(c);
}

void Worker::on_eof(Connection* c, Half& in) {
  in.eof = true;
  if (c->down.tls && c->down.tls->acme_challenge()) {
    abort(c);  // the ACME validator closed after its handshake
    return;
  }
  Half& out = c->other(in);
  out.hold = false;
  if (c->state == ConnState::kConnecting && in.id == HalfId::kDown) {
    // Ingress: the client finished sending while the app connection is being made;
    // what it sent is queued and the half-close follows it once connected.
    out.shut_wanted = true;
    return;
  }
  if (c->state != ConnState::kRelaying) {
    // The client left before the relay started, or the upstream closed mid-handshake:
    // either way the handshake failed.
    if (c->state == ConnState::kDownHandshake && c->down.tls && c->down.tls->peer_sent_nothing()) {
      // Connected and closed without a byte: a load balancer's TCP health check, not a
      // client that failed a handshake.
      lstats(c).tls_closed_before_hello_total.add();
      RS_DEBUG("%s: %s connected and closed without a ClientHello (health check?)",
               listener_config(c).config.name.c_str(), peer_text(c->down.fd).c_str());
    } else if (c->state == ConnState::kDownHandshake || c->state == ConnState::kUpHandshake) {
      lstats(c).tls_handshake_failure.add();
      if (c->state == ConnState::kUpHandshake) report_upstream_connect(c, false);
      RS_LOG_RATE_LIMITED(
          log::Level::kInfo, 2, "%s: %s %s closed the connection during the TLS handshake",
          listener_config(c).config.name.c_str(), half_name(in), peer_text(in.fd).c_str());
    }
    abort(c);
    return;
  }
  out.shut_wanted = true;
  if (out.tls) out.tls->shutdown();
  flush(c, out);
  maybe_finish(c);
}

void Worker::flush(Connection* c, Half& half) {
  if (half.fd < 0 || !half.connected || half.hold) return;
  if (half.send_len != 0) {
    // One send in flight per socket. If the ring counts on it completing while it is
    // submitted, it would not wake for its completion, and what waits behind it here
    // (more bytes, the FIN) would wait for some other event.
    if (half.send_counted && half.send_turn == turn_id_ &&
        (half.out.size() > half.send_len || (half.shut_wanted && !half.shut_done))) {
      half.send_counted = false;
      ring_->send_awaited();
    }
    return;
  }
  if (!half.out.empty()) {
    // Everything queued (up to kMaxSendParts chunks) in one send: a peer reading a
    // stream of records is woken once per batch, not once per 16 KiB record.
    std::array<iovec, IoRing::kMaxSendParts> parts;
    size_t n = half.out.gather(parts, kMaxSendBytes);
    uint32_t len = 0;
    for (size_t i = 0; i < n; ++i) len += static_cast<uint32_t>(parts[i].iov_len);
    half.send_len = len;
    // A send followed by a shutdown, or to a socket that was full, is waited for.
    const bool inline_expected = !half.send_was_short && !half.shut_wanted;
    half.send_counted = inline_expected && len <= IoRing::kInlineSendBytes;
    half.send_turn = turn_id_;
    ring_->send_parts(
        half.fd, std::span<const iovec>(parts.data(), n), token(c, half, OpCode::kSend),
        inline_expected ? IoRing::SendHint::kLikelyInline : IoRing::SendHint::kMayWait);
    ++c->pending_ops;
    return;
  }
  if (half.shut_wanted && !half.shut_done && c->state != ConnState::kClosing) {
    half.shut_done = true;
    // shutdown(2) directly: the kernel runs IORING_OP_SHUTDOWN on an io-wq thread, and
    // that hand-off cost ~9% of a short connection's CPU (bench/compare profile). The
    // call never blocks; an error (peer already gone) shows up on the next recv/send.
    ::shutdown(half.fd, SHUT_WR);
  }
}

void Worker::on_send(Connection* c, Half& half, const Completion& completion) {
  --c->pending_ops;
  half.send_was_short =
      completion.res >= 0 && static_cast<uint32_t>(completion.res) < half.send_len;
  half.send_len = 0;
  if (completion.res < 0) {
    if (c->state != ConnState::kClosing) {
      lstats(c).cx_reset.add();
      RS_DEBUG("%s: %s send: %s", listener_config(c).config.name.c_str(), half_name(half),
               std::strerror(-completion.res));
      if (half.id == HalfId::kUp) report_reset_in_upstream_handshake(c);
      abort(c);
    }
    return;
  }
  size_t sent = static_cast<size_t>(completion.res);
  half.out.consume(sent);
  if (half.id == HalfId::kDown) {
    lstats(c).downstream_bytes_tx.add(sent);
  } else {
    lstats(c).upstream_bytes_tx.add(sent);
  }
  c->last_activity_ms = now_ms_;
  if (c->state == ConnState::kClosing) return;
  if (c->kind != ConnKind::kTcp) {
    http_on_sent(c, half);
    return;
  }
  flush(c, half);
  Half& producer = c->other(half);
  if (producer.recv_paused && half.out.size() <= runtime_.config.max_pending_bytes / 2) {
    // Resume: the cancelled recv may still be in flight; arm_recv waits for it.
    if (!producer.recv_armed) {
      producer.recv_paused = false;
      arm_recv(c, producer);
    } else {
      producer.recv_paused = false;  // the cancel's completion will re-arm (see on_recv)
    }
  }
  maybe_finish(c);
}

void Worker::maybe_finish(Connection* c) {
  if (c->state != ConnState::kRelaying) return;
  for (const Half* half : {&c->down, &c->up}) {
    if (!half->eof || !half->out.empty() || half->send_len != 0) return;
    if (!c->other(*half).shut_done) return;
  }
  abort(c);  // both directions ended cleanly
}

void Worker::abort(Connection* c) {
  if (c->state == ConnState::kClosing) return;
  bool connecting = c->state == ConnState::kConnecting;
  c->state = ConnState::kClosing;
  timers_.cancel(&c->timer.node);
  // A recv, a send to a peer that stopped reading, or a connect may be outstanding:
  // cancel them so the kernel returns them promptly. (A shutdown completes by itself.)
  for (Half* half : {&c->down, &c->up}) {
    if (half->fd < 0) continue;
    bool busy = half->recv_armed || half->send_len != 0 || (connecting && half->id == HalfId::kUp);
    if (!busy) continue;
    ring_->cancel_fd(half->fd, token(c, *half, OpCode::kCancel));
    ++c->pending_ops;
  }
  if (c->kind != ConnKind::kTcp) http_on_abort(c);
  retire_if_idle(c);
}

void Worker::retire_if_idle(Connection* c) {
  if (c->state == ConnState::kClosing && c->pending_ops == 0 && !c->retired) {
    c->retired = true;
    retired_.push_back(c);
  }
}

void Worker::release_retired() {
  for (Connection* c : retired_) release(c);
  retired_.clear();
}

void Worker::connection_timer(Connection* c) {
  if (c->kind == ConnKind::kHttpUp) {
    http_up_timer(c);
    return;
  }
  if (c->kind == ConnKind::kHttpDown && c->state != ConnState::kDownHandshake) {
    http_down_timer(c);
    return;
  }
  ListenerStats& stats = lstats(c);
  switch (c->state) {
    case ConnState::kDownHandshake:
    case ConnState::kUpHandshake:
      stats.timeout_handshake.add();
      stats.tls_handshake_failure.add();
      if (c->state == ConnState::kUpHandshake) report_upstream_connect(c, false);
      RS_LOG_RATE_LIMITED(log::Level::kInfo, 2, "%s: %s TLS handshake timed out",
                          listener_config(c).config.name.c_str(),
                          c->state == ConnState::kDownHandshake ? "client" : "upstream");
      abort(c);
      return;
    case ConnState::kConnecting: {
      stats.timeout_connect.add();
      stats.upstream_cx_connect_fail.add();
      ListenerRuntime& listener = listener_config(c);
      RS_LOG_RATE_LIMITED(log::Level::kWarn, 2, "%s: upstream connect timed out",
                          listener.config.name.c_str());
      if (listener.config.kind == ListenerKind::kEgress) {
        report_upstream_connect(c, false);
        // Abandon this attempt: cancel its connect (the completion is ignored since the
        // state moves on) and try the next endpoint, if attempts are left, on a new socket.
        ring_->cancel_fd(c->up.fd, token(c, c->up, OpCode::kCancel));
        ++c->pending_ops;
        ring_->close(c->up.fd, 0);
        c->up.fd = -1;
        start_connect(c);
        return;
      }
      abort(c);
      return;
    }
    case ConnState::kRelaying: {
      uint64_t idle = static_cast<uint64_t>(runtime_.config.tcp_idle_timeout.count());
      if (idle == 0) return;
      uint64_t deadline = c->last_activity_ms + idle;
      if (deadline > now_ms_) {
        schedule_timer(c, deadline);
        return;
      }
      stats.timeout_idle.add();
      abort(c);
      return;
    }
    case ConnState::kClosing:
      return;
  }
}

}  // namespace ringside::proxy
