// The state of one proxied connection: a downstream socket and an upstream socket, each
// with an optional TLS session stacked on it and a queue of bytes to send. The worker
// moves bytes between the halves; this header is plain data so it stays small (it is
// the per-connection memory the proxy pays).
#pragma once

#include <cstdint>
#include <memory>

#include "proxy/runtime.h"
#include "ringside/authz.h"
#include "ringside/buffer.h"
#include "ringside/timer_wheel.h"
#include "ringside/tls.h"

namespace ringside::proxy {

enum class HalfId : uint8_t { kDown = 0, kUp = 1 };

// One socket of a connection.
struct Half {
  int fd = -1;
  HalfId id = HalfId::kDown;
  bool connected = false;       // the socket can send (accepted, or connect succeeded)
  bool recv_armed = false;      // a multishot recv is outstanding
  bool recv_paused = false;     // back-pressure: its recv was cancelled on purpose
  bool cancel_sent = false;     // a cancel of its recv is in flight
  bool eof = false;             // its read direction has ended (FIN or close_notify)
  bool shut_wanted = false;     // shut down its write side once `out` drains
  bool shut_done = false;       // shutdown(SHUT_WR) was submitted
  bool hold = false;            // keep `out` (a session ticket) for the next reply
  bool send_was_short = false;  // the last send went out short: the socket is full
  bool send_counted = false;    // the ring counts on the send in flight completing
                                // inline (kLikelyInline, queued in turn send_turn)
  uint32_t send_len = 0;        // bytes of the send in flight; 0 when none
  uint32_t send_turn = 0;
  ChunkQueue out;                        // bytes to send on this socket (ciphertext when TLS)
  std::unique_ptr<tls::TlsSession> tls;  // null: plaintext socket
};

struct Connection;

// A timer with its owner: the wheel hands back the TimerNode, the first member of this
// standard-layout struct, so the owner is found without offsetof tricks.
struct OwnedTimer {
  TimerNode node;
  Connection* connection = nullptr;  // null: a listener's timer
  uint32_t listener = 0;
};

// What a Connection object is: a TCP relay (both halves), the downstream side of an HTTP
// connection (down half; the upstream is a separate kHttpUp connection, possibly pooled),
// or an upstream HTTP connection (up half only).
enum class ConnKind : uint8_t { kTcp, kHttpDown, kHttpUp };

struct HttpDown;  // proxy/http_state.h
struct HttpUp;
struct H2Down;  // proxy/h2_state.h

enum class ConnState : uint8_t {
  kDownHandshake,  // ingress: TLS handshake with the client
  kConnecting,     // connecting to the upstream
  kUpHandshake,    // egress: TLS handshake with the upstream
  kRelaying,       // bytes flow both ways
  kClosing,        // waiting for the kernel to return every outstanding operation
};

// A socket's peer as getpeername(2) gave it, in 20 bytes; its text is made when needed.
struct PeerAddress {
  uint16_t family = 0;  // AF_INET, AF_INET6, or 0: unknown
  uint16_t port = 0;
  uint8_t addr[16] = {};
};

// Ingress with client certificates, when the listener needs the client's identity (an
// allow-list, rules, x-forwarded-client-cert): what its verified certificate allows,
// decided once during the handshake (Worker::start_ingress, admit_client in relay.cc).
struct PeerAuth {
  const authz::ListenerPolicy* policy = nullptr;  // null: no policy, only the header
  bool xfcc_wanted = false;                       // build `xfcc`
  std::string_view by;    // our own URI SAN (XFCC By=), from the connection's generation
  bool verified = false;  // the client's leaf verified in this handshake
  authz::Grant grant;     // policy's verdict on that identity
  std::string identity;   // authz::describe(): logs and the access log
  std::string xfcc;       // the x-forwarded-client-cert value; empty: none
};

struct Connection {
  Connection();
  ~Connection();
  uint32_t slot = 0;
  uint16_t gen = 0;
  uint16_t listener = 0;
  ConnState state = ConnState::kDownHandshake;
  ConnKind kind = ConnKind::kTcp;
  uint8_t attempts = 0;                   // upstream connect attempts made
  cluster::Endpoint* endpoint = nullptr;  // upstream: the endpoint tried or used (held)
  uint32_t pending_ops = 0;               // operations the kernel still owes a completion for
  bool upstream_counted = false;
  bool retired = false;     // queued for release
  bool sniffing = false;    // tls=permissive ingress: the first bytes decide TLS or plaintext
  bool plaintext = false;   // ... and they were not a TLS handshake
  bool h2_checked = false;  // downstream HTTP: its first bytes were looked at for the h2 preface
  uint64_t last_activity_ms = 0;
  const TlsGeneration* tls_generation = nullptr;  // the context this connection started with
  PeerAddress peer;  // downstream HTTP: the client (for x-forwarded-for and logs)
  OwnedTimer timer;
  Half down;
  Half up;
  std::unique_ptr<HttpDown> http;  // kHttpDown; null while idle (http.cc: idle memory)
  std::unique_ptr<HttpUp> hup;     // kHttpUp
  std::unique_ptr<H2Down> h2;      // kHttpDown speaking HTTP/2 (http is then never used)
  std::unique_ptr<PeerAuth> auth;  // ingress needing the client's identity; else null

  Half& other(const Half& h) { return h.id == HalfId::kDown ? up : down; }
};

}  // namespace ringside::proxy
