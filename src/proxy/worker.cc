#include "proxy/worker.h"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "net/socket.h"
#include "ringside/log.h"

namespace ringside::proxy {
namespace {

// Token slots at and above this value name listeners (accept) rather than connections.
constexpr uint32_t kListenerSlotBase = 0xffff0000u;
constexpr uint32_t kWakeSlot = 0xfffffffeu;
// How long accepting pauses after the process ran out of descriptors.
constexpr uint64_t kAcceptRetryMs = 100;

bool is_descriptor_shortage(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

}  // namespace

Worker::Worker(unsigned index, Runtime& runtime, RingOptions ring_options)
    : Worker(index, runtime, std::unique_ptr<IoRing>()) {
  ring_options_ = ring_options;
}

Worker::Worker(unsigned index, Runtime& runtime, std::unique_ptr<IoRing> ring)
    : index_(index),
      runtime_(runtime),
      ring_(std::move(ring)),
      timers_(monotonic_ms()),
      now_ms_(monotonic_ms()),
      listeners_(runtime.listeners.size()),
      pools_(runtime.listeners.size() * runtime.clusters.size()),
      h2_pools_(runtime.listeners.size() * runtime.clusters.size()),
      http_idle_pool_(runtime.http.limits),
      stats_(&runtime.stats->workers[index]),
      listener_stats_(&runtime.stats->listeners[index]) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  for (uint32_t i = 0; i < listeners_.size(); ++i) listeners_[i].retry_timer.listener = i;
  if (runtime.http.access_log) {
    access_log_ = std::make_unique<http::AccessLogger>(runtime.http.access_log->ring(index),
                                                       runtime.config.http.access_log_format,
                                                       runtime.config.http.log_query);
  }
}

Worker::~Worker() {
  for (auto& listener : listeners_) {
    timers_.cancel(&listener.retry_timer.node);
    if (listener.fd >= 0) ::close(listener.fd);
  }
  for (auto& slot : slots_) {
    if (!slot) continue;
    timers_.cancel(&slot->timer.node);
    if (slot->down.fd >= 0) ::close(slot->down.fd);
    if (slot->up.fd >= 0) ::close(slot->up.fd);
  }
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Result<void> Worker::open_listeners(std::string* detail) {
  if (wake_fd_ < 0) {
    *detail = std::string("eventfd: ") + std::strerror(errno);
    return make_error(ErrorKind::kResource, Side::kInternal, "eventfd", errno);
  }
  for (size_t i = 0; i < runtime_.listeners.size(); ++i) {
    const ListenerConfig& config = runtime_.listeners[i].config;
    // Worker 0 opens first (Server::prepare), so its socket is each address's first.
    auto fd = net::make_listener(config.listen,
                                 index_ == 0 ? net::PortShare::kFirst : net::PortShare::kJoin);
    if (!fd.ok()) {
      *detail = config.name + ": cannot listen on " + config.listen.to_string() + ": ";
      if (fd.error().sys_errno == EADDRINUSE) {
        *detail += "the address is already in use by another process";
      } else {
        *detail += std::string(fd.error().what) + ": " + std::strerror(fd.error().sys_errno);
      }
      return fd.error();
    }
    listeners_[i].fd = *fd;
  }
  return {};
}

void Worker::request_drain() {
  drain_requested_.store(true, std::memory_order_release);
  wake();
}

void Worker::request_stop() {
  stop_requested_.store(true, std::memory_order_release);
  wake();
}

void Worker::wake() {
  uint64_t one = 1;
  // A full eventfd counter (EAGAIN) still wakes the reader: nothing to handle.
  ssize_t ignored = ::write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

void Worker::run() {
  if (start()) {
    while (turn(kMaxWaitMs)) {
    }
  }
  close_listeners();
  // The cancel and close requests just queued must reach the kernel before the thread
  // leaves, or the listening sockets stay open (and accept) until the process exits.
  if (ring_) ring_->submit_and_wait(0);
  open_connections_.store(live_, std::memory_order_relaxed);
  finished_.store(true, std::memory_order_release);
}

bool Worker::start() {
  char name[16];
  std::snprintf(name, sizeof(name), "w%u", index_);
  log::set_thread_name(name);
  if (!ring_) {
    auto ring = make_io_uring(ring_options_);
    if (!ring.ok()) {
      RS_ERROR("worker %u: cannot create io_uring: %s: %s", index_,
               std::string(ring.error().what).c_str(), std::strerror(ring.error().sys_errno));
      return false;
    }
    ring_ = std::move(*ring);
  }
  RS_DEBUG("worker %u: %s", index_, ring_->describe().c_str());
  for (uint32_t i = 0; i < listeners_.size(); ++i) arm_accept(i);
  ring_->read(wake_fd_, &wake_value_, sizeof(wake_value_),
              Token{kWakeSlot, 0, 0, OpCode::kWake}.pack());
  return true;
}

bool Worker::turn(int64_t max_wait_ms) {
  check_commands();
  if ((draining_ && live_ == 0) || (stopping_ && (live_ == 0 || now_ms_ >= stop_deadline_ms_))) {
    return false;
  }
  int64_t wait_ms = timers_.ms_until_next(now_ms_);
  if (wait_ms < 0 || wait_ms > max_wait_ms) wait_ms = max_wait_ms;
  int ready = ring_->submit_and_wait(wait_ms * 1000000);
  if (ready < 0) {
    RS_ERROR("worker %u: io_uring failed: %s", index_, std::strerror(-ready));
    return false;
  }
  ++turn_id_;  // sends queued from here on are counted by the next submit_and_wait
  now_ms_ = monotonic_ms();
  unsigned n;
  while ((n = ring_->reap(reap_batch_)) > 0) {
    for (unsigned i = 0; i < n; ++i) handle(reap_batch_[i]);
    if (n < reap_batch_.size()) break;
  }
  timers_.advance(now_ms_, [this](TimerNode* node) { on_timer(node); });
  if (!ticket_holds_.empty()) release_idle_ticket_holds();
  http_commit_dirty();
  rearm_starved();
  release_retired();
  stats_->loop_iterations.add();
  // Quiescent point: nothing from the previous turn is still being read.
  epoch_.store(epoch_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  open_connections_.store(live_, std::memory_order_relaxed);
  return true;
}

void Worker::check_commands() {
  if (!stopping_ && stop_requested_.load(std::memory_order_acquire)) {
    stopping_ = true;
    draining_ = true;
    stop_deadline_ms_ = now_ms_ + 1000;
    close_listeners();
    for (auto& slot : slots_) {
      if (slot && slot->state != ConnState::kClosing) {
        lstats(slot.get()).cx_drained.add();
        abort(slot.get());
      }
    }
    release_retired();
  }
  if (!draining_ && drain_requested_.load(std::memory_order_acquire)) {
    draining_ = true;
    close_listeners();
    http_drain();
  }
}

void Worker::close_listeners() {
  for (auto& listener : listeners_) {
    timers_.cancel(&listener.retry_timer.node);
    if (listener.fd < 0) continue;
    if (listener.accept_armed) ring_->cancel_fd(listener.fd, 0);
    // Closing the descriptor through the ring keeps the order: cancel first.
    ring_->close(listener.fd, 0);
    listener.fd = -1;
  }
}

void Worker::arm_accept(uint32_t listener) {
  ListenerSocket& socket = listeners_[listener];
  if (socket.fd < 0 || socket.accept_armed || draining_) return;
  ring_->accept_multishot(socket.fd,
                          Token{kListenerSlotBase + listener, 0, 0, OpCode::kAccept}.pack());
  socket.accept_armed = true;
}

void Worker::handle(const Completion& completion) {
  Token t = Token::unpack(completion.user_data);
  switch (t.op) {
    case OpCode::kAccept:
      on_accept(t.slot - kListenerSlotBase, completion);
      return;
    case OpCode::kWake:
      if (completion.res >= 0 || completion.res == -EINTR || completion.res == -EAGAIN) {
        ring_->read(wake_fd_, &wake_value_, sizeof(wake_value_), completion.user_data);
      } else {
        RS_ERROR("worker %u: wake read failed: %s", index_, std::strerror(-completion.res));
      }
      return;
    case OpCode::kNone:
      return;  // fire-and-forget operations (listener close, final close)
    default:
      break;
  }
  Connection* c = lookup(t);
  if (c == nullptr) {
    // A completion for a connection that no longer exists: only its buffer matters.
    if (completion.buffer_id >= 0) ring_->recycle(static_cast<uint16_t>(completion.buffer_id));
    return;
  }
  Half& half = t.side == 0 ? c->down : c->up;  // kConnect: side = attempt (>= 1)
  switch (t.op) {
    case OpCode::kRecv:
      on_recv(c, half, completion);
      break;
    case OpCode::kSend:
      on_send(c, half, completion);
      break;
    case OpCode::kConnect:
      on_connect(c, t.side, completion);
      break;
    case OpCode::kShutdown:
    case OpCode::kCancel:
      --c->pending_ops;
      break;
    default:
      break;
  }
  retire_if_idle(c);
}

void Worker::on_accept(uint32_t listener, const Completion& completion) {
  if (listener >= listeners_.size()) return;
  ListenerSocket& socket = listeners_[listener];
  if (!completion.more) socket.accept_armed = false;
  if (completion.res >= 0) {
    int fd = completion.res;
    if (draining_ ||
        (runtime_.config.max_connections != 0 && live_ >= runtime_.config.max_connections)) {
      ::close(fd);
      return;
    }
    // A TLS listener serves nothing before its first certificate or trust bundle is
    // published (a remote CA that has not answered since start-up): closed at once, so a
    // client fails fast instead of waiting in a handshake that cannot happen.
    // (Except, on a TCP ingress, for an ACME tls-alpn-01 validation while the first
    // certificate is being ordered: see start_ingress.)
    const ListenerConfig& config = runtime_.listeners[listener].config;
    const bool acme_validation = config.kind == ListenerKind::kIngress &&
                                 config.protocol == Protocol::kTcp &&
                                 tls::acme_tls_alpn_challenge_active();
    if (const ContextSlot* slot = runtime_.listeners[listener].tls;
        slot != nullptr && slot->load() == nullptr && !acme_validation) {
      (*listener_stats_)[listener].cx_no_certificate.add();
      ::close(fd);
      return;
    }
    Connection* c = allocate(listener);
    c->down.fd = fd;
    c->down.connected = true;
    lstats(c).cx_total.add();
    lstats(c).cx_active.inc();
    if (listener_config(c).config.protocol != Protocol::kTcp) {
      http_accept(c);
    } else if (listener_config(c).config.kind == ListenerKind::kIngress) {
      start_ingress(c);
    } else {
      start_connect(c);
    }
  } else if (completion.res != -ECANCELED) {
    int err = -completion.res;
    stats_->accept_errors.add();
    if (is_descriptor_shortage(err)) {
      // Stop accepting for a moment instead of spinning on a full descriptor table; the
      // pending connections wait in the backlog.
      RS_LOG_RATE_LIMITED(log::Level::kWarn, 1, "%s: accept: %s; pausing accepts for %llu ms",
                          runtime_.listeners[listener].config.name.c_str(), std::strerror(err),
                          static_cast<unsigned long long>(kAcceptRetryMs));
      stats_->accept_paused.add();
      if (socket.accept_armed) {
        ring_->cancel_fd(socket.fd, 0);
        socket.accept_armed = false;
      }
      timers_.schedule(&socket.retry_timer.node, now_ms_ + kAcceptRetryMs);
      return;
    }
    RS_LOG_RATE_LIMITED(log::Level::kWarn, 1, "%s: accept: %s",
                        runtime_.listeners[listener].config.name.c_str(), std::strerror(err));
  }
  if (!socket.accept_armed && !socket.retry_timer.node.linked() && socket.fd >= 0) {
    arm_accept(listener);
  }
}

void Worker::on_listener_retry(uint32_t listener) { arm_accept(listener); }

void Worker::on_timer(TimerNode* node) {
  auto* timer = reinterpret_cast<OwnedTimer*>(node);
  if (timer->connection == nullptr) {
    on_listener_retry(timer->listener);
  } else {
    connection_timer(timer->connection);
  }
}

void Worker::rearm_starved() {
  if (starved_.empty() || ring_->buffers_free() == 0) return;
  std::vector<uint64_t> tokens;
  tokens.swap(starved_);
  for (uint64_t value : tokens) {
    Connection* c = lookup(Token::unpack(value));
    if (c == nullptr) continue;
    Half& half = Token::unpack(value).side == 0 ? c->down : c->up;
    arm_recv(c, half);
  }
}

}  // namespace ringside::proxy
