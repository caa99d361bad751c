// The load generator's view of TLS: a client context built once at start-up and one
// TlsLink per connection, both thin wrappers over ringside::tls (wolfSSL over memory
// buffers). The client moves ciphertext between the socket and the link itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace ringside::bench {

struct TlsClientOptions {
  std::string cacert_file;  // PEM trust bundle; empty with insecure
  std::string cert_file;    // client certificate chain (mTLS), optional
  std::string key_file;
  std::string sni;        // sent as SNI and checked against the server's DNS SANs
  bool insecure = false;  // no verification at all
  bool tls13_only = false;
  bool resume = false;  // keep each connection's session for the next (tickets)
  std::string alpn;     // ALPN ids to offer, comma-separated ("h2"); empty: no ALPN
};

// A saved session for resumption, reused by the next connection of the same slot.
class TlsResumeSlot {
 public:
  TlsResumeSlot() = default;
  TlsResumeSlot(const TlsResumeSlot&) = delete;
  TlsResumeSlot& operator=(const TlsResumeSlot&) = delete;
  ~TlsResumeSlot();
  void* session = nullptr;  // WOLFSSL_SESSION*
};

enum class TlsStep : uint8_t { kOk, kWantRead, kClosed, kError };

class TlsLink {
 public:
  virtual ~TlsLink() = default;
  // Ciphertext received from the server; must stay valid until the next call returns
  // kWantRead.
  virtual void set_input(const uint8_t* data, size_t len) = 0;
  virtual TlsStep handshake() = 0;
  virtual TlsStep read(uint8_t* out, size_t cap, size_t* n) = 0;
  virtual TlsStep write(const uint8_t* data, size_t len) = 0;
  virtual void shutdown() = 0;
  // Ciphertext to send: the contiguous bytes at the head of the queue (empty when
  // nothing is queued), and how many of them were sent.
  virtual std::span<const uint8_t> pending_output() const = 0;
  virtual void consume_output(size_t n) = 0;
  virtual bool resumed() const = 0;
  // The ALPN id the server chose ("h2"), empty when none was (valid after the handshake).
  virtual std::string_view alpn() const = 0;
  // Keeps the session (with its ticket, if one has arrived) in slot.
  virtual void save_session(TlsResumeSlot* slot) = 0;
  // After kError: a one-line reason.
  virtual std::string error() const = 0;
};

class TlsClient {
 public:
  virtual ~TlsClient() = default;
  // Reads the files and builds one client context per thread. nullptr with error set
  // when a file is unreadable or the material is invalid.
  static std::unique_ptr<TlsClient> create(const TlsClientOptions& options, unsigned threads,
                                           std::string* error);
  // A new session for a connection of thread; resumes slot's session when it has one.
  virtual std::unique_ptr<TlsLink> connect(unsigned thread, TlsResumeSlot* slot) = 0;
};

}  // namespace ringside::bench
