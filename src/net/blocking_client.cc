// A blocking client connection for the control threads: see blocking_client.h.
#include "net/blocking_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "net/socket.h"

namespace ringside::net {

BlockingConnection::BlockingConnection(const SocketAddress& address, Clock::time_point deadline)
    : deadline_(deadline) {
  auto fd = make_client_socket(address);  // non-blocking
  if (!fd.ok()) {
    error_ = std::string("socket: ") + std::strerror(fd.error().sys_errno);
    return;
  }
  fd_ = *fd;
  if (::connect(fd_, address.get(), address.length) != 0 && errno != EINPROGRESS) {
    error_ = std::string("connect: ") + std::strerror(errno);
    return;
  }
  if (!wait(POLLOUT)) return;
  if (const int err = socket_error(fd_); err != 0) {
    error_ = std::string("connect: ") + std::strerror(err);
  }
}

BlockingConnection::~BlockingConnection() {
  tls_.reset();
  if (fd_ >= 0) ::close(fd_);
}

bool BlockingConnection::wait(short events) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
    if (left.count() <= 0) {
      fail("timeout");
      return false;
    }
    pollfd p{fd_, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) {
      fail(std::string("poll: ") + std::strerror(errno));
      return false;
    }
  }
}

bool BlockingConnection::send_raw(std::string_view bytes) {
  while (!bytes.empty()) {
    if (!wait(POLLOUT)) return false;
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      fail(std::string("send: ") + std::strerror(errno));
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

ssize_t BlockingConnection::receive_raw(char* buffer, size_t size) {
  for (;;) {
    if (!wait(POLLIN)) return -1;
    const ssize_t n = ::recv(fd_, buffer, size, 0);
    if (n >= 0) return n;
    if (errno == EAGAIN || errno == EINTR) continue;
    fail(std::string("recv: ") + std::strerror(errno));
    return -1;
  }
}

bool BlockingConnection::flush_tls() {
  while (!tls_out_.empty()) {
    auto front = tls_out_.front();
    if (!send_raw(std::string_view(reinterpret_cast<const char*>(front.data()), front.size()))) {
      return false;
    }
    tls_out_.consume(front.size());
  }
  return true;
}

bool BlockingConnection::start_tls(WOLFSSL_CTX* ctx, std::string_view sni,
                                   std::string_view verify_name, std::string_view alpn) {
  if (!ok()) return false;
  tls_ = std::make_unique<tls::TlsSession>(ctx, tls::Role::kClient, sni, verify_name);
  if (tls_->broken()) {
    fail("TLS: out of memory");
    return false;
  }
  if (!alpn.empty() && !tls_->offer_alpn(alpn)) {
    fail("TLS: cannot offer ALPN " + std::string(alpn));
    return false;
  }
  tls_->set_output(&tls_out_);
  for (;;) {
    const tls::TlsStatus status = tls_->handshake();
    if (!flush_tls()) return false;
    if (status == tls::TlsStatus::kOk) return true;
    if (status != tls::TlsStatus::kWantRead) {
      fail("TLS handshake: " + (tls_->error_detail().empty() ? std::string("connection closed")
                                                             : tls_->error_detail()));
      return false;
    }
    const ssize_t n = receive_raw(tls_in_, sizeof(tls_in_));
    if (n < 0) return false;
    if (n == 0) {
      fail("TLS handshake: the server closed the connection");
      return false;
    }
    tls_->set_input(reinterpret_cast<const uint8_t*>(tls_in_), static_cast<size_t>(n));
  }
}

bool BlockingConnection::send_all(std::string_view bytes) {
  if (!ok()) return false;
  if (!tls_) return send_raw(bytes);
  if (tls_->write(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()) !=
      tls::TlsStatus::kOk) {
    fail("TLS: " + tls_->error_detail());
    return false;
  }
  return flush_tls();
}

ssize_t BlockingConnection::receive(char* buffer, size_t size) {
  if (!ok()) return -1;
  if (!tls_) return receive_raw(buffer, size);
  for (;;) {
    size_t n = 0;
    const tls::TlsStatus status = tls_->read(reinterpret_cast<uint8_t*>(buffer), size, &n);
    if (!flush_tls()) return -1;  // a key update or an alert may have been queued
    if (status == tls::TlsStatus::kOk) return static_cast<ssize_t>(n);
    if (status == tls::TlsStatus::kClosed) return 0;
    if (status == tls::TlsStatus::kError) {
      fail("TLS: " + tls_->error_detail());
      return -1;
    }
    const ssize_t got = receive_raw(tls_in_, sizeof(tls_in_));
    if (got < 0) return -1;
    if (got == 0) {
      fail("the server closed the connection without close_notify");
      return -1;
    }
    tls_->set_input(reinterpret_cast<const uint8_t*>(tls_in_), static_cast<size_t>(got));
  }
}

}  // namespace ringside::net
