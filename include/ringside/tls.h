// TLS with wolfSSL over memory: a TlsSession never owns a file descriptor. Ciphertext
// that the reactor received is handed in with set_input(); ciphertext that wolfSSL wants
// to send is appended to a ChunkQueue that the connection sends. A TlsContext is one
// immutable generation of TLS material with one WOLFSSL_CTX per worker.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ringside/buffer.h"
#include "ringside/result.h"

struct WOLFSSL_CTX;
struct WOLFSSL;

namespace ringside::tls {

// Initializes wolfSSL once per process (idempotent, thread-safe).
void global_init();

enum class Role : uint8_t { kServer, kClient };
enum class ClientCertMode : uint8_t { kNone, kOptional, kRequire };
enum class KeyType : uint8_t { kEcdsaP256, kRsa2048, kOther };

std::string_view to_string(KeyType type);

// The application protocol an ALPN exchange (RFC 7301) ended with, for the code that
// picks a codec: kNone when nothing was negotiated (the peer sent no ALPN, or none of
// ours), kOther for any id but "h2" and "http/1.1".
enum class AppProtocol : uint8_t { kNone, kHttp2, kHttp11, kOther };

AppProtocol classify_alpn(std::string_view id);

// Checks one ALPN protocol id as ringside configures it: 1 to 255 bytes of printable
// ASCII without ',' (wolfSSL's list separator) or ':' (ringside's, in alpn=LIST). On
// failure detail says why.
bool valid_alpn_id(std::string_view id, std::string* detail);

// This wolfSSL can keep an ALPN list on a context (tools/wolfssl-ctx-alpn.patch, applied by
// tools/build-wolfssl.sh); a distribution build (-Dsystem_wolfssl=true) cannot.
bool context_alpn_supported();

// Facts about one certificate, for validation, /certs and ringside-ca show.
struct CertInfo {
  std::string subject;
  std::string issuer;
  std::string serial_hex;  // lower-case hex, no separators
  std::vector<std::string> dns_sans;
  std::vector<std::string> uri_sans;  // SPIFFE IDs among them
  KeyType key_type = KeyType::kOther;
  int64_t not_before = 0;  // Unix seconds
  int64_t not_after = 0;   // Unix seconds
  bool is_ca = false;
  int path_len = -1;       // a CA's pathLenConstraint; -1 when it has none
  std::string sha256_hex;  // fingerprint of the DER
};

// Parses the first certificate of a PEM text.
Result<CertInfo> inspect_certificate(std::string_view pem, std::string* detail);
// Parses every certificate of a PEM bundle (the trust bundle); empty if none parse.
std::vector<CertInfo> inspect_bundle(std::string_view pem);

// A certificate chain (leaf first) and its private key, both PEM.
struct Identity {
  std::string cert_chain_pem;
  std::string key_pem;
};

// Checks an identity before it is ever used: both parse, the key is unencrypted and
// matches the leaf, now is within the leaf's validity, required_san (if not empty) is
// one of its DNS SANs (wildcards allowed per RFC 6125), and the chain verifies against
// trust_pem (if not empty). On failure detail says why in one line.
Result<CertInfo> validate_identity(const Identity& identity, std::string_view trust_pem,
                                   std::string_view required_san, int64_t now, std::string* detail);

struct ContextOptions {
  Role role = Role::kServer;
  // Server: the CAs that client certificates must chain to (used when client_cert is
  // not kNone). Client: the CAs that the server's chain must end at (required).
  std::string trust_pem;
  ClientCertMode client_cert = ClientCertMode::kNone;  // server only
  bool tls13_only = false;
  // Offer and accept TLS 1.2 only (interop tests and benchmarks). A 1.3-capable client
  // cannot be downgraded instead: RFC 8446's downgrade sentinel aborts the handshake.
  bool tls12_only = false;
  // Client side: no verification at all (ringside-bench --insecure only).
  bool insecure = false;
  // ALPN protocol ids (valid_alpn_id), most preferred first; empty: no ALPN. Kept once
  // per WOLFSSL_CTX, never copied into a session. Server: the ids it accepts; the first
  // id of the client's list that is also here is chosen (client preference, as wolfSSL
  // does), and a client offering none of them, or no ALPN at all, still connects with
  // nothing negotiated (as nginx and Envoy do). Client: offered in the ClientHello; a
  // server choosing an id that was not offered fails the handshake (RFC 7301 3.2).
  std::vector<std::string> alpn;
  // Server: issue no session tickets. A resumed session carries no client certificate, so
  // a listener that needs the client's identity on every connection (an allow-list,
  // authorization rules, x-forwarded-client-cert) gives every client a full handshake.
  bool no_tickets = false;
};

// One generation of TLS material: immutable once built. Protocols: TLS 1.3 and 1.2
// with ECDHE and AEAD ciphers only (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305); no
// renegotiation. Curves X25519 and P-256.
class TlsContext {
 public:
  // Builds `workers` WOLFSSL_CTX objects (wolfSSL locks a per-CTX mutex in
  // wolfSSL_new, so workers never share one). identity may be null for a client that
  // presents no certificate. A server needs an identity.
  static Result<std::shared_ptr<const TlsContext>> create(const ContextOptions& options,
                                                          const Identity* identity,
                                                          unsigned workers, std::string* detail);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  WOLFSSL_CTX* ctx(unsigned worker) const { return ctxs_[worker]; }
  unsigned workers() const { return static_cast<unsigned>(ctxs_.size()); }
  Role role() const { return options_.role; }
  // The identity's leaf (empty CertInfo when there is none).
  const CertInfo& cert() const { return cert_; }

 private:
  TlsContext() = default;
  std::vector<WOLFSSL_CTX*> ctxs_;
  ContextOptions options_;
  CertInfo cert_;
  // The session ticket key shared by all workers' CTXs of this generation.
  std::shared_ptr<void> ticket_key_;
};

// ACME tls-alpn-01 (RFC 8737): while a challenge is set, a server session whose ClientHello
// offers ALPN "acme-tls/1" with SNI `name` answers with this self-signed certificate
// (carrying the acmeIdentifier extension) instead of the context's, negotiates
// "acme-tls/1", and reports acme_challenge() once the handshake is done: the connection
// then ends there. Set and cleared by the ACME certificate source (control thread); a
// session reads it when it is created. nullptr clears it.
class TlsContext;
struct AcmeTlsAlpnChallenge {
  std::string name;
  std::string cert_pem, key_pem;
  // A server context serving that certificate, for a listener that has no certificate of
  // its own yet (the first one comes through this very challenge).
  std::shared_ptr<const TlsContext> context;
};
void set_acme_tls_alpn_challenge(std::shared_ptr<const AcmeTlsAlpnChallenge> challenge);
// Whether a challenge is set now (a relaxed read: for a listener without a certificate).
bool acme_tls_alpn_challenge_active();
inline constexpr std::string_view kAcmeTlsAlpnProtocol = "acme-tls/1";

// What a session call did.
enum class TlsStatus : uint8_t {
  kOk,        // done (handshake complete, or bytes moved)
  kWantRead,  // needs more ciphertext: set_input() then call again
  kClosed,    // the peer sent close_notify (clean end of stream)
  kError,     // fatal: see error() / error_detail(); close the connection
};

// Server: asked once the client's leaf certificate verified (chain, dates), with the leaf
// decoded and verified = true; false refuses the handshake there, as a failed
// verification would (the client gets a bad_certificate alert). With an early check (see
// set_peer_check) it is also asked before that, with the leaf as the client sent it and
// verified = false: nothing about it is proven yet, so there it may only refuse, and a
// refusal then saves the signature checks. arg is what set_peer_check() was given.
using PeerCheck = bool (*)(void* arg, const CertInfo& leaf, bool verified);

// One TLS connection over memory buffers.
class TlsSession {
 public:
  // For a client: sni (may be empty) is sent, and when verify_name is not empty the
  // peer's certificate must carry it as a DNS SAN (CN is never used); when verify_uri is
  // not empty, it must also carry that URI SAN (a SPIFFE ID), byte for byte.
  TlsSession(WOLFSSL_CTX* ctx, Role role, std::string_view sni = {},
             std::string_view verify_name = {}, std::string_view verify_uri = {});
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // True when construction failed (out of memory): treat as kError.
  bool broken() const { return ssl_ == nullptr; }

  // Ciphertext received from the peer. The bytes are read (copied) by later calls;
  // the span must stay valid until input_pending() is 0 or the next set_input().
  void set_input(const uint8_t* data, size_t len);
  size_t input_pending() const { return in_len_ - in_off_; }

  // Where ciphertext to send is appended. Must be set before any call.
  void set_output(ChunkQueue* out) { out_ = out; }

  // Drives the handshake. kOk when it has completed.
  TlsStatus handshake();
  bool handshake_done() const { return handshake_done_; }

  // Decrypts into out (up to cap bytes). On kOk *n is the plaintext length (> 0).
  TlsStatus read(uint8_t* out, size_t cap, size_t* n);
  // Encrypts len bytes; the records are appended to the output queue. Always consumes
  // everything on kOk.
  TlsStatus write(const uint8_t* data, size_t len);
  // Queues close_notify.
  void shutdown();

  // After kError: kind (kVerify when a certificate was rejected, by either side) and one
  // line for an operator: the cause in words, naming the peer ("client" or "server") and
  // any alert it sent, then wolfSSL's own code, e.g. "client rejected our certificate
  // (alert bad_certificate); wolfSSL: received alert fatal error (-313)".
  ErrorKind error_kind() const { return error_kind_; }
  const std::string& error_detail() const { return error_detail_; }

  // True until a first byte of the peer has been read: a client that closes in this state
  // never started a handshake (a load balancer's TCP health check does exactly that).
  bool peer_sent_nothing() const { return peer_head_len_ == 0; }

  // Negotiated facts (valid after the handshake).
  std::string_view protocol() const;  // "TLSv1.3"
  bool tls13() const;
  std::string_view cipher() const;
  bool resumed() const;
  // The ALPN id negotiated ("h2", "http/1.1"), empty when none was. A view of the
  // session's own copy: no allocation; valid until the session goes.
  std::string_view alpn() const;
  AppProtocol app_protocol() const { return classify_alpn(alpn()); }
  // Client, before the handshake: offer these ALPN ids (comma-separated) instead of the
  // context's list. False when wolfSSL refused them.
  bool offer_alpn(std::string_view list);
  // Peer leaf certificate, when one was sent and verified (a server with client_cert
  // kNone and an insecure client do not verify, so they have none). Decoded on each call;
  // only the DER (~0.5 KB for ECDSA) is kept per session.
  Result<CertInfo> peer_certificate() const;

  WOLFSSL* native() const { return ssl_; }

  // Server, for a listener without a certificate yet: a session that answers only the
  // current ACME tls-alpn-01 challenge (any other handshake fails); nullptr when there is
  // none. It keeps the challenge's context alive.
  static std::unique_ptr<TlsSession> for_acme_challenge(unsigned worker);

  // Server: the handshake answered an ACME tls-alpn-01 challenge (see
  // set_acme_tls_alpn_challenge): close the connection, relay nothing.
  bool acme_challenge() const { return acme_challenge_; }

  // Server: check the client's verified leaf with check(arg, leaf, true) during the
  // handshake; with early, also the leaf as sent (check(arg, leaf, false)) before wolfSSL
  // checks any signature of its chain.
  void set_peer_check(PeerCheck check, void* arg, bool early = false) {
    peer_check_ = check;
    peer_check_arg_ = arg;
    peer_check_early_ = early;
  }
  // The handshake failed because the peer check refused the client.
  bool peer_refused() const { return peer_refused_; }

  // wolfSSL I/O callbacks (internal).
  int on_recv(char* buf, int sz);
  int on_send(const char* buf, int sz);
  // Certificate verification callback state (internal).
  const std::string& verify_name() const { return verify_name_; }
  const std::string& verify_uri() const { return verify_uri_; }
  // The peer check's verdict on a leaf (true when there is no check).
  bool admit_peer(const CertInfo& leaf, bool verified);
  bool wants_early_peer_check() const { return peer_check_ != nullptr && peer_check_early_; }
  // The leaf the early check decoded (and its DER), handed to the verified check once:
  // taking it keeps the DER as the verified peer certificate.
  void keep_early_leaf(CertInfo leaf, std::vector<uint8_t> der) {
    early_leaf_ = std::make_unique<EarlyLeaf>(EarlyLeaf{std::move(leaf), std::move(der)});
  }
  bool take_early_leaf(CertInfo* leaf) {
    if (!early_leaf_) return false;
    *leaf = std::move(early_leaf_->info);
    keep_peer_certificate(std::move(early_leaf_->der));
    early_leaf_.reset();
    return true;
  }
  void record_verify_failure(std::string reason);
  void keep_peer_certificate(std::vector<uint8_t> der);

 private:
  TlsStatus fail(int ret);
  // The cause of a failure with wolfSSL error code `error`, in words; sets error_kind_.
  std::string explain(int error);
  // The description of a fatal alert the peer sent as a plaintext record that wolfSSL
  // could not take (see tls.cc), or -1.
  int plaintext_alert() const;
  // Frees wolfSSL's record buffer when the input is drained (see tls.cc).
  void release_input_buffer();

  WOLFSSL* ssl_ = nullptr;
  const uint8_t* in_ = nullptr;
  size_t in_len_ = 0;
  size_t in_off_ = 0;
  ChunkQueue* out_ = nullptr;
  bool handshake_done_ = false;
  Role role_;
  bool failed_ = false;
  // The first bytes the peer sent: enough of a ClientHello (or ServerHello) to name the
  // protocol version it offered, or to tell plaintext from TLS when a handshake fails.
  uint8_t peer_head_len_ = 0;
  uint8_t peer_head_[11] = {};
  bool acme_challenge_ = false;
  bool acme_only_ = false;  // for_acme_challenge(): nothing else may complete
  // Server, only while an ACME tls-alpn-01 challenge is set: the challenge and the
  // ClientHello record collected as wolfSSL reads it (see on_recv).
  struct AcmeProbe;
  std::unique_ptr<AcmeProbe> acme_probe_;
  std::shared_ptr<const AcmeTlsAlpnChallenge> acme_only_challenge_;
  void probe_acme_hello(const uint8_t* data, size_t len);
  ErrorKind error_kind_ = ErrorKind::kTls;
  std::string error_detail_;
  std::string verify_name_;  // client: the DNS SAN the peer must carry
  std::string verify_uri_;   // client: the URI SAN the peer must carry
  PeerCheck peer_check_ = nullptr;
  void* peer_check_arg_ = nullptr;
  bool peer_check_early_ = false;
  struct EarlyLeaf {
    CertInfo info;
    std::vector<uint8_t> der;
  };
  std::unique_ptr<EarlyLeaf> early_leaf_;  // between the early and the verified check
  bool peer_refused_ = false;
  std::string verify_failure_;     // first certificate verification failure
  std::vector<uint8_t> peer_der_;  // the verified peer leaf
};

}  // namespace ringside::tls
