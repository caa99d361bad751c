// A blocking client connection for the control threads (health checks, the CA client):
// connect, optionally TLS with the project's own TlsSession, send, receive, every step
// bounded by one deadline. Never on a worker: it blocks in poll().
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "ringside/address.h"
#include "ringside/buffer.h"
#include "ringside/tls.h"

namespace ringside::net {

class BlockingConnection {
 public:
  using Clock = std::chrono::steady_clock;

  // Connects (non-blocking socket, poll until the deadline). ok() says whether it did.
  BlockingConnection(const SocketAddress& address, Clock::time_point deadline);
  ~BlockingConnection();
  BlockingConnection(const BlockingConnection&) = delete;
  BlockingConnection& operator=(const BlockingConnection&) = delete;

  // TLS from here on: a client session of ctx (which holds the trust and any client
  // certificate), sending sni and requiring verify_name as a DNS SAN of the server's
  // certificate when not empty, offering alpn (comma-separated ids) when not empty. False
  // (and error()) when the handshake fails.
  bool start_tls(WOLFSSL_CTX* ctx, std::string_view sni, std::string_view verify_name,
                 std::string_view alpn = {});

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  // The first failure wins.
  void fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
  }

  bool send_all(std::string_view bytes);
  // Some (plaintext) bytes into buffer: their count; 0 at the peer's end (a TLS peer's
  // close_notify or, without TLS, its FIN); -1 on an error or the deadline (error()).
  ssize_t receive(char* buffer, size_t size);

 private:
  bool wait(short events);
  bool send_raw(std::string_view bytes);
  ssize_t receive_raw(char* buffer, size_t size);
  bool flush_tls();

  Clock::time_point deadline_;
  int fd_ = -1;
  std::string error_;
  std::unique_ptr<tls::TlsSession> tls_;
  ChunkQueue tls_out_;
  char tls_in_[16 * 1024];
};

}  // namespace ringside::net
