// TlsContext and TlsSession: wolfSSL over memory buffers (see include/ringside/tls.h).
#include "ringside/tls.h"

// clang-format off
#include <wolfssl/options.h>
// clang-format on
#include <sys/random.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfio.h>

#include <array>
#include <atomic>
#include <cctype>
#include <cstring>
#include <mutex>
#include <string>

#include "tls/pem.h"

namespace ringside::tls {
namespace {

// TLS 1.3 suites first, then TLS 1.2 ECDHE with AEAD only; ECDSA before RSA so that a
// server holding both kinds of chain would pick the cheaper signature.
constexpr const char* kCipherList =
    "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Session ticket key shared by every worker's WOLFSSL_CTX of one context generation, so
// a client resumes on whichever worker accepts it. Tickets of an older generation are
// rejected (not fatal): the client just does a full handshake.
struct TicketKey {
  std::array<uint8_t, WOLFSSL_TICKET_NAME_SZ> name{};
  std::array<uint8_t, CHACHA20_POLY1305_AEAD_KEYSIZE> key{};
};

bool fill_random(void* out, size_t len) {
  auto* p = static_cast<uint8_t*>(out);
  while (len > 0) {
    ssize_t n = getrandom(p, len, 0);
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

int ticket_callback(WOLFSSL* /*ssl*/, unsigned char key_name[WOLFSSL_TICKET_NAME_SZ],
                    unsigned char iv[WOLFSSL_TICKET_IV_SZ],
                    unsigned char mac[WOLFSSL_TICKET_MAC_SZ], int enc, unsigned char* ticket,
                    int in_len, int* out_len, void* user_ctx) {
  const auto* tk = static_cast<const TicketKey*>(user_ctx);
  if (tk == nullptr || in_len < 0) return WOLFSSL_TICKET_RET_FATAL;
  if (enc) {
    std::memcpy(key_name, tk->name.data(), tk->name.size());
    if (!fill_random(iv, WOLFSSL_TICKET_IV_SZ)) return WOLFSSL_TICKET_RET_REJECT;
  } else if (std::memcmp(key_name, tk->name.data(), tk->name.size()) != 0) {
    return WOLFSSL_TICKET_RET_REJECT;
  }
  uint8_t aad[WOLFSSL_TICKET_NAME_SZ + WOLFSSL_TICKET_IV_SZ + 2];
  std::memcpy(aad, tk->name.data(), WOLFSSL_TICKET_NAME_SZ);
  std::memcpy(aad + WOLFSSL_TICKET_NAME_SZ, iv, WOLFSSL_TICKET_IV_SZ);
  aad[sizeof(aad) - 2] = static_cast<uint8_t>(in_len >> 8);
  aad[sizeof(aad) - 1] = static_cast<uint8_t>(in_len);
  auto len = static_cast<word32>(in_len);
  if (enc) {
    std::memset(mac, 0, WOLFSSL_TICKET_MAC_SZ);
    if (wc_ChaCha20Poly1305_Encrypt(tk->key.data(), iv, aad, sizeof(aad), ticket, len, ticket,
                                    mac) != 0) {
      return WOLFSSL_TICKET_RET_REJECT;
    }
  } else if (wc_ChaCha20Poly1305_Decrypt(tk->key.data(), iv, aad, sizeof(aad), ticket, len, mac,
                                         ticket) != 0) {
    return WOLFSSL_TICKET_RET_REJECT;
  }
  *out_len = in_len;
  return WOLFSSL_TICKET_RET_OK;
}

int recv_callback(WOLFSSL* /*ssl*/, char* buf, int sz, void* ctx) {
  return static_cast<TlsSession*>(ctx)->on_recv(buf, sz);
}

int send_callback(WOLFSSL* /*ssl*/, char* buf, int sz, void* ctx) {
  return static_cast<TlsSession*>(ctx)->on_send(buf, sz);
}

std::string verify_reason(int error, const std::string& wanted_name) {
  switch (error) {
    case ASN_AFTER_DATE_E:
      return "expired";
    case ASN_BEFORE_DATE_E:
      return "not yet valid";
    case ASN_NO_SIGNER_E:
      return "unknown CA (unable to get local issuer certificate: not signed by the trust bundle)";
    case ASN_SELF_SIGNED_E:
      return "self-signed";
    case ASN_SIG_CONFIRM_E:
      return "bad signature";
    case ASN_PATHLEN_INV_E:
    case ASN_PATHLEN_SIZE_E:
      return "path length constraint exceeded";
    case DOMAIN_NAME_MISMATCH:
      return "name mismatch: wanted " + wanted_name + " among its DNS SANs";
    default:
      return detail::error_string(error);
  }
}

// RFC 8446 6.2 and RFC 5246 7.2 names, as OpenSSL prints them.
std::string alert_name(int code) {
  switch (code) {
    case close_notify:
      return "close_notify";
    case unexpected_message:
      return "unexpected_message";
    case bad_record_mac:
      return "bad_record_mac";
    case record_overflow:
      return "record_overflow";
    case decompression_failure:
      return "decompression_failure";
    case handshake_failure:
      return "handshake_failure";
    case no_certificate:
      return "no_certificate";
    case bad_certificate:
      return "bad_certificate";
    case unsupported_certificate:
      return "unsupported_certificate";
    case certificate_revoked:
      return "certificate_revoked";
    case certificate_expired:
      return "certificate_expired";
    case certificate_unknown:
      return "certificate_unknown";
    case illegal_parameter:
      return "illegal_parameter";
    case unknown_ca:
      return "unknown_ca";
    case access_denied:
      return "access_denied";
    case decode_error:
      return "decode_error";
    case decrypt_error:
      return "decrypt_error";
    case wolfssl_alert_protocol_version:
      return "protocol_version";
    case insufficient_security:
      return "insufficient_security";
    case internal_error:
      return "internal_error";
    case inappropriate_fallback:
      return "inappropriate_fallback";
    case user_canceled:
      return "user_canceled";
    case no_renegotiation:
      return "no_renegotiation";
    case missing_extension:
      return "missing_extension";
    case unsupported_extension:
      return "unsupported_extension";
    case unrecognized_name:
      return "unrecognized_name";
    case bad_certificate_status_response:
      return "bad_certificate_status_response";
    case unknown_psk_identity:
      return "unknown_psk_identity";
    case certificate_required:
      return "certificate_required";
    case no_application_protocol:
      return "no_application_protocol";
    default:
      return std::to_string(code);
  }
}

// Alerts a peer sends when it does not accept the certificate it was shown.
bool is_certificate_alert(int code) {
  switch (code) {
    case bad_certificate:
    case unsupported_certificate:
    case certificate_revoked:
    case certificate_expired:
    case certificate_unknown:
    case unknown_ca:
      return true;
    default:
      return false;
  }
}

// TLS record content types: change_cipher_spec, alert, handshake, application_data,
// heartbeat.
bool is_record_type(uint8_t byte) { return byte >= 20 && byte <= 24; }

bool is_printable(const uint8_t* bytes, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    if ((bytes[i] < 0x20 || bytes[i] > 0x7e) && bytes[i] != '\r' && bytes[i] != '\n' &&
        bytes[i] != '\t') {
      return false;
    }
  }
  return true;
}

// A request-line's start: an upper-case method token and a space.
bool looks_like_http(const uint8_t* bytes, size_t len) {
  size_t i = 0;
  while (i < len && bytes[i] >= 'A' && bytes[i] <= 'Z') ++i;
  return i > 0 && i < len && bytes[i] == ' ';
}

std::string hex_byte(uint8_t byte) {
  static constexpr char kDigits[] = "0123456789abcdef";
  return std::string("0x") + kDigits[byte >> 4] + kDigits[byte & 0xf];
}

std::string version_name(int version) {
  switch (version) {
    case 0x0300:
      return "SSL 3.0";
    case 0x0301:
      return "TLS 1.0";
    case 0x0302:
      return "TLS 1.1";
    case 0x0303:
      return "TLS 1.2";
    default:
      return {};
  }
}

bool is_malformed_input(int error) {
  switch (error) {
    case PARSE_ERROR:
    case UNKNOWN_HANDSHAKE_TYPE:
    case UNKNOWN_RECORD_TYPE:
    case INCOMPLETE_DATA:
    case BAD_HELLO:
    case BUFFER_ERROR:
    case LENGTH_ERROR:
    case OUT_OF_ORDER_E:
    case SANITY_MSG_E:
    case DUPLICATE_MSG_E:
    case DECODE_E:
    case MISSING_HANDSHAKE_DATA:
    case HANDSHAKE_SIZE_ERROR:
    case EXT_NOT_ALLOWED:
      return true;
    default:
      return false;
  }
}

bool is_verify_error(int error) {
  switch (error) {
    case ASN_AFTER_DATE_E:
    case ASN_BEFORE_DATE_E:
    case ASN_NO_SIGNER_E:
    case ASN_SELF_SIGNED_E:
    case ASN_SIG_CONFIRM_E:
    case ASN_PATHLEN_INV_E:
    case ASN_PATHLEN_SIZE_E:
    case DOMAIN_NAME_MISMATCH:
    case VERIFY_CERT_ERROR:
    case NO_PEER_CERT:
    case ASN_NO_PEM_HEADER:
      return true;
    default:
      return false;
  }
}

}  // namespace

// wolfSSL calls this for every certificate of the peer's chain, the leaf last.
int verify_callback(int preverify_ok, WOLFSSL_X509_STORE_CTX* store);
int peer_leaf_callback(void* arg, const unsigned char* der, unsigned int length);

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { wolfSSL_Init(); });
}

bool context_alpn_supported() {
#ifdef WOLFSSL_RINGSIDE_CTX_ALPN
  return true;
#else
  return false;
#endif
}

AppProtocol classify_alpn(std::string_view id) {
  if (id.empty()) return AppProtocol::kNone;
  if (id == "h2") return AppProtocol::kHttp2;
  if (id == "http/1.1") return AppProtocol::kHttp11;
  return AppProtocol::kOther;
}

bool valid_alpn_id(std::string_view id, std::string* detail) {
  auto fail = [detail](std::string why) {
    if (detail) *detail = std::move(why);
    return false;
  };
  if (id.empty()) return fail("an ALPN protocol id cannot be empty");
  if (id.size() > WOLFSSL_MAX_ALPN_PROTO_NAME_LEN) {
    return fail("ALPN protocol id longer than 255 bytes");
  }
  for (char c : id) {
    if (c <= ' ' || c > '~' || c == ',' || c == ':') {
      return fail("ALPN protocol id '" + std::string(id) +
                  "' has a character other than printable ASCII without ',' ':' and space");
    }
  }
  return true;
}

std::string_view to_string(KeyType type) {
  switch (type) {
    case KeyType::kEcdsaP256:
      return "ecdsa-p256";
    case KeyType::kRsa2048:
      return "rsa-2048";
    case KeyType::kOther:
      return "other";
  }
  return "other";
}

// ---------------------------------------------------------------------------------------
// TlsContext

namespace {

std::string configure_ctx(WOLFSSL_CTX* ctx, const ContextOptions& options, const Identity* identity,
                          TicketKey* ticket) {
  if (!options.tls13_only && !options.tls12_only &&
      wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS) {
    return "cannot set the TLS 1.2 protocol floor";
  }
  if (wolfSSL_CTX_set_cipher_list(ctx, kCipherList) != WOLFSSL_SUCCESS) {
    return "cannot set the cipher list";
  }
  int groups[] = {WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_SECP384R1};
  if (options.tls12_only) {
    // wolfSSL_CTX_set_groups() is for 1.3-capable contexts only.
    for (int group : groups) {
      if (wolfSSL_CTX_UseSupportedCurve(ctx, static_cast<word16>(group)) != WOLFSSL_SUCCESS) {
        return "cannot set the key exchange groups";
      }
    }
  } else if (wolfSSL_CTX_set_groups(ctx, groups, 3) != WOLFSSL_SUCCESS) {
    return "cannot set the key exchange groups";
  }
  // Handshake messages of one flight go out in one send callback (one chunk append).
  wolfSSL_CTX_set_group_messages(ctx);
  // wolfSSL's session cache is process-global and locked; a worker-per-core proxy uses
  // stateless tickets instead. A client keeps the cache "on" but never stores into it, so
  // that a caller can still resume with wolfSSL_get1_session()/wolfSSL_set_session().
  wolfSSL_CTX_set_session_cache_mode(ctx, options.role == Role::kServer
                                              ? WOLFSSL_SESS_CACHE_OFF
                                              : WOLFSSL_SESS_CACHE_NO_INTERNAL_STORE);
  wolfSSL_CTX_SetIORecv(ctx, recv_callback);
  wolfSSL_CTX_SetIOSend(ctx, send_callback);

  if (!options.alpn.empty()) {
    std::string list;
    for (const std::string& id : options.alpn) {
      std::string why;
      if (!valid_alpn_id(id, &why)) return why;
      if (!list.empty()) list += ',';
      list += id;
    }
    if (options.alpn.size() > WOLFSSL_MAX_ALPN_NUMBER) return "too many ALPN protocol ids";
    // A server continues without ALPN when nothing matches (a client that offers only
    // ids we lack still gets its connection, as HTTP/1.1); a client refuses a server
    // that picked an id it never offered.
    const unsigned char mismatch = options.role == Role::kServer ? WOLFSSL_ALPN_CONTINUE_ON_MISMATCH
                                                                 : WOLFSSL_ALPN_FAILED_ON_MISMATCH;
#ifdef WOLFSSL_RINGSIDE_CTX_ALPN
    if (wolfSSL_CTX_UseALPN(ctx, list.data(), static_cast<unsigned>(list.size()), mismatch) !=
        WOLFSSL_SUCCESS) {
      return "cannot set the ALPN protocols";
    }
#else
    (void)mismatch;
    return "ALPN needs wolfSSL_CTX_UseALPN (tools/wolfssl-ctx-alpn.patch); this wolfSSL lacks it";
#endif
  }

  if (identity != nullptr) {
    const auto* chain = reinterpret_cast<const unsigned char*>(identity->cert_chain_pem.data());
    if (wolfSSL_CTX_use_certificate_chain_buffer(
            ctx, chain, static_cast<long>(identity->cert_chain_pem.size())) != WOLFSSL_SUCCESS) {
      return "certificate chain does not load";
    }
    const auto* key = reinterpret_cast<const unsigned char*>(identity->key_pem.data());
    if (wolfSSL_CTX_use_PrivateKey_buffer(ctx, key, static_cast<long>(identity->key_pem.size()),
                                          WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
      return "private key does not load";
    }
    if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS) {
      return "private key does not match the certificate";
    }
  }

  bool need_trust = options.role == Role::kClient ? !options.insecure
                                                  : options.client_cert != ClientCertMode::kNone;
  if (need_trust) {
    if (options.trust_pem.empty()) {
      return options.role == Role::kClient ? "a client context needs a trust bundle"
                                           : "client certificates need a trust bundle";
    }
    const auto* trust = reinterpret_cast<const unsigned char*>(options.trust_pem.data());
    if (wolfSSL_CTX_load_verify_buffer(ctx, trust, static_cast<long>(options.trust_pem.size()),
                                       WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
      return "trust bundle does not load";
    }
  }

  if (options.role == Role::kServer) {
    int mode = WOLFSSL_VERIFY_NONE;
    if (options.client_cert == ClientCertMode::kOptional) mode = WOLFSSL_VERIFY_PEER;
    if (options.client_cert == ClientCertMode::kRequire) {
      mode = WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    wolfSSL_CTX_set_verify(ctx, mode, mode == WOLFSSL_VERIFY_NONE ? nullptr : verify_callback);
    if (mode != WOLFSSL_VERIFY_NONE) wolfSSL_CTX_set_peer_leaf_cb(ctx, peer_leaf_callback);
    if (options.no_tickets) {
      // (wolfSSL_CTX_no_ticket_TLSv13 answers 0 on success, unlike most of the API.)
      if (wolfSSL_CTX_NoTicketTLSv12(ctx) != WOLFSSL_SUCCESS ||
          (!options.tls12_only && wolfSSL_CTX_no_ticket_TLSv13(ctx) != 0)) {
        return "cannot turn session tickets off";
      }
    } else {
      wolfSSL_CTX_set_TicketEncCb(ctx, ticket_callback);
      wolfSSL_CTX_set_TicketEncCtx(ctx, ticket);
    }
  } else {
    wolfSSL_CTX_set_verify(ctx, options.insecure ? WOLFSSL_VERIFY_NONE : WOLFSSL_VERIFY_PEER,
                           options.insecure ? nullptr : verify_callback);
  }
  return {};
}

}  // namespace

Result<std::shared_ptr<const TlsContext>> TlsContext::create(const ContextOptions& options,
                                                             const Identity* identity,
                                                             unsigned workers,
                                                             std::string* detail) {
  global_init();
  auto fail = [detail](std::string why) -> Result<std::shared_ptr<const TlsContext>> {
    if (detail) *detail = std::move(why);
    return make_error(ErrorKind::kConfig, Side::kInternal, "TLS context");
  };
  if (workers == 0) return fail("a TLS context needs at least one worker");
  if (options.tls12_only && options.tls13_only) {
    return fail("tls12_only and tls13_only exclude each other");
  }
  if (options.role == Role::kServer && identity == nullptr) {
    return fail("a server context needs a certificate and key");
  }
  std::shared_ptr<TlsContext> context(new TlsContext());
  context->options_ = options;
  if (identity != nullptr) {
    std::string why;
    auto der = detail::pem_certificates(identity->cert_chain_pem, &why);
    if (der.empty()) return fail("certificate chain: " + why);
    if (!detail::decode_certificate(der.front(), &context->cert_, &why)) {
      return fail("certificate chain: " + why);
    }
  }
  // The ticket key lives as long as the context: it is the CTX's ticket user data.
  auto ticket = std::make_shared<TicketKey>();
  if (!fill_random(ticket->name.data(), ticket->name.size()) ||
      !fill_random(ticket->key.data(), ticket->key.size())) {
    return fail("no randomness for the session ticket key");
  }
  context->ticket_key_ = ticket;
  for (unsigned i = 0; i < workers; ++i) {
    WOLFSSL_METHOD* method = nullptr;
    if (options.role == Role::kServer) {
      method = options.tls13_only   ? wolfTLSv1_3_server_method()
               : options.tls12_only ? wolfTLSv1_2_server_method()
                                    : wolfSSLv23_server_method();
    } else {
      method = options.tls13_only   ? wolfTLSv1_3_client_method()
               : options.tls12_only ? wolfTLSv1_2_client_method()
                                    : wolfSSLv23_client_method();
    }
    WOLFSSL_CTX* ctx = method ? wolfSSL_CTX_new(method) : nullptr;
    if (ctx == nullptr) return fail("out of memory creating a TLS context");
    context->ctxs_.push_back(ctx);
    std::string why = configure_ctx(ctx, options, identity, ticket.get());
    if (!why.empty()) return fail(why);
  }
  return std::shared_ptr<const TlsContext>(std::move(context));
}

TlsContext::~TlsContext() {
  for (WOLFSSL_CTX* ctx : ctxs_) wolfSSL_CTX_free(ctx);
}

// ---------------------------------------------------------------------------------------
// TlsSession

namespace {

// The current ACME tls-alpn-01 challenge; acme_challenge_set spares sessions the
// shared_ptr's lock while there is none (nearly always).
std::atomic<bool> acme_challenge_set{false};
std::shared_ptr<const AcmeTlsAlpnChallenge> acme_challenge_current;

// Whether a complete ClientHello record offers ALPN "acme-tls/1" with SNI name.
bool hello_asks_acme(std::string_view record, std::string_view name) {
  size_t at = 5;  // record header
  auto u8 = [&](size_t i) { return static_cast<uint8_t>(record[i]); };
  auto u16 = [&](size_t i) { return static_cast<size_t>(u8(i) << 8 | u8(i + 1)); };
  if (record.size() < at + 4 + 2 + 32 + 1 || u8(0) != 0x16 || u8(at) != 0x01) return false;
  at += 4 + 2 + 32;  // handshake header, version, random
  at += 1 + u8(at);  // session id
  if (at + 2 > record.size()) return false;
  at += 2 + u16(at);  // cipher suites
  if (at + 1 > record.size()) return false;
  at += 1 + u8(at);  // compression methods
  if (at + 2 > record.size()) return false;
  size_t end = std::min(record.size(), at + 2 + u16(at));
  at += 2;
  bool alpn = false, sni = false;
  while (at + 4 <= end) {
    size_t type = u16(at), len = u16(at + 2);
    size_t body = at + 4;
    if (body + len > end) return false;
    if (type == 16 && len >= 2) {  // application_layer_protocol_negotiation
      for (size_t p = body + 2; p < body + len && p + 1 + u8(p) <= body + len; p += 1 + u8(p)) {
        if (record.substr(p + 1, u8(p)) == kAcmeTlsAlpnProtocol) alpn = true;
      }
    } else if (type == 0 && len >= 5 && u8(body + 2) == 0) {  // server_name: host_name
      size_t host = u16(body + 3);
      if (body + 5 + host <= body + len) {
        std::string_view offered = record.substr(body + 5, host);
        sni = offered.size() == name.size() &&
              std::equal(offered.begin(), offered.end(), name.begin(), [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) ==
                       std::tolower(static_cast<unsigned char>(b));
              });
      }
    }
    at = body + len;
  }
  return alpn && sni;
}

}  // namespace

void set_acme_tls_alpn_challenge(std::shared_ptr<const AcmeTlsAlpnChallenge> challenge) {
  const bool set = challenge != nullptr;
  std::atomic_store(&acme_challenge_current, std::move(challenge));
  acme_challenge_set.store(set, std::memory_order_release);
}

bool acme_tls_alpn_challenge_active() { return acme_challenge_set.load(std::memory_order_relaxed); }

std::unique_ptr<TlsSession> TlsSession::for_acme_challenge(unsigned worker) {
  if (!acme_tls_alpn_challenge_active()) return nullptr;
  auto challenge = std::atomic_load(&acme_challenge_current);
  if (!challenge || !challenge->context || worker >= challenge->context->workers()) {
    return nullptr;
  }
  auto session = std::make_unique<TlsSession>(challenge->context->ctx(worker), Role::kServer);
  session->acme_only_ = true;
  session->acme_only_challenge_ = std::move(challenge);
  return session;
}

struct TlsSession::AcmeProbe {
  std::shared_ptr<const AcmeTlsAlpnChallenge> challenge;
  std::string record;
};

void TlsSession::probe_acme_hello(const uint8_t* data, size_t len) {
  AcmeProbe& probe = *acme_probe_;
  probe.record.append(reinterpret_cast<const char*>(data), len);
  if (probe.record.size() < 5) return;
  if (probe.record[0] != 0x16) {  // not a handshake record: not for us
    acme_probe_.reset();
    return;
  }
  const size_t want =
      5 + (static_cast<uint8_t>(probe.record[3]) << 8 | static_cast<uint8_t>(probe.record[4]));
  if (probe.record.size() < want) return;
  // The whole first record has passed to wolfSSL, which parses it after this callback
  // returns: the certificate and ALPN list set now are the ones it answers with.
  const AcmeTlsAlpnChallenge& challenge = *probe.challenge;
  if (hello_asks_acme(std::string_view(probe.record).substr(0, want), challenge.name) &&
      wolfSSL_use_certificate_buffer(
          ssl_, reinterpret_cast<const unsigned char*>(challenge.cert_pem.data()),
          static_cast<long>(challenge.cert_pem.size()), WOLFSSL_FILETYPE_PEM) == WOLFSSL_SUCCESS &&
      wolfSSL_use_PrivateKey_buffer(
          ssl_, reinterpret_cast<const unsigned char*>(challenge.key_pem.data()),
          static_cast<long>(challenge.key_pem.size()), WOLFSSL_FILETYPE_PEM) == WOLFSSL_SUCCESS) {
    std::string protocol(kAcmeTlsAlpnProtocol);
    if (wolfSSL_UseALPN(ssl_, protocol.data(), static_cast<unsigned>(protocol.size()),
                        WOLFSSL_ALPN_FAILED_ON_MISMATCH) == WOLFSSL_SUCCESS) {
      acme_challenge_ = true;
    }
  }
  acme_probe_.reset();
}

TlsSession::TlsSession(WOLFSSL_CTX* ctx, Role role, std::string_view sni,
                       std::string_view verify_name, std::string_view verify_uri)
    : role_(role), verify_uri_(verify_uri) {
  ssl_ = ctx ? wolfSSL_new(ctx) : nullptr;
  if (ssl_ == nullptr) return;
  // Per session as well as per CTX, so that a session also works on a CTX built elsewhere.
  wolfSSL_SSLSetIORecv(ssl_, recv_callback);
  wolfSSL_SSLSetIOSend(ssl_, send_callback);
  wolfSSL_SetIOReadCtx(ssl_, this);
  wolfSSL_SetIOWriteCtx(ssl_, this);
  // The verify callback finds this session (and the name it must check) here.
  wolfSSL_SetCertCbCtx(ssl_, this);
  if (role == Role::kServer && acme_challenge_set.load(std::memory_order_acquire)) {
    auto challenge = std::atomic_load(&acme_challenge_current);
    if (challenge) acme_probe_ = std::make_unique<AcmeProbe>(AcmeProbe{std::move(challenge), {}});
  }
  if (role == Role::kClient) {
    if (!sni.empty()) {
      wolfSSL_UseSNI(ssl_, WOLFSSL_SNI_HOST_NAME, sni.data(), static_cast<word16>(sni.size()));
    }
    if (!verify_name.empty()) {
      verify_name_.assign(verify_name);
      // With SANs present wolfSSL matches the SANs only; a certificate without any SAN
      // is refused by verify_callback, so the CN is never used.
      if (wolfSSL_check_domain_name(ssl_, verify_name_.c_str()) != WOLFSSL_SUCCESS) {
        wolfSSL_free(ssl_);
        ssl_ = nullptr;
      }
    }
  }
}

TlsSession::~TlsSession() {
  if (ssl_ != nullptr) wolfSSL_free(ssl_);
}

void TlsSession::set_input(const uint8_t* data, size_t len) {
  in_ = data;
  in_len_ = len;
  in_off_ = 0;
}

int TlsSession::on_recv(char* buf, int sz) {
  size_t available = in_len_ - in_off_;
  if (available == 0) return WOLFSSL_CBIO_ERR_WANT_READ;
  size_t n = std::min(available, static_cast<size_t>(sz));
  std::memcpy(buf, in_ + in_off_, n);
  if (peer_head_len_ < sizeof(peer_head_)) {
    size_t keep = std::min(n, sizeof(peer_head_) - peer_head_len_);
    std::memcpy(peer_head_ + peer_head_len_, in_ + in_off_, keep);
    peer_head_len_ = static_cast<uint8_t>(peer_head_len_ + keep);
  }
  if (acme_probe_) probe_acme_hello(in_ + in_off_, n);
  in_off_ += n;
  return static_cast<int>(n);
}

int TlsSession::on_send(const char* buf, int sz) {
  if (out_ == nullptr) return WOLFSSL_CBIO_ERR_GENERAL;
  out_->append(buf, static_cast<size_t>(sz));
  return sz;
}

void TlsSession::record_verify_failure(std::string reason) {
  if (verify_failure_.empty()) verify_failure_ = std::move(reason);
}

TlsStatus TlsSession::fail(int ret) {
  int error = wolfSSL_get_error(ssl_, ret);
  if (error == WOLFSSL_ERROR_WANT_READ || error == WOLFSSL_ERROR_WANT_WRITE) {
    return TlsStatus::kWantRead;
  }
  if (error == WOLFSSL_ERROR_ZERO_RETURN) return TlsStatus::kClosed;
  error_detail_ = explain(error) + "; wolfSSL: " + detail::error_string(error);
  failed_ = true;
  return TlsStatus::kError;
}

int TlsSession::plaintext_alert() const {
  // A TLS 1.3 client that rejects the server's certificate has not switched to its
  // handshake keys yet, so OpenSSL sends its alert in the clear; wolfSSL, expecting an
  // encrypted record, reports a parse error on its header. The record is in the input of
  // the failing call: 21 (alert), version 3.x, length 2, fatal, description; wolfSSL read
  // its header, and maybe its body too.
  auto alert_at = [this](size_t start) {
    if (start + 7 > in_len_) return -1;
    const uint8_t* r = in_ + start;
    if (r[0] != 21 || r[1] != 3 || r[2] > 4 || r[3] != 0 || r[4] != 2 || r[5] != alert_fatal) {
      return -1;
    }
    return static_cast<int>(r[6]);
  };
  if (in_ == nullptr) return -1;
  int alert = in_off_ >= 5 ? alert_at(in_off_ - 5) : -1;
  if (alert < 0 && in_off_ >= 7) alert = alert_at(in_off_ - 7);
  return alert;
}

std::string TlsSession::explain(int error) {
  const bool server = role_ == Role::kServer;
  const std::string peer = server ? "client" : "server";
  error_kind_ = ErrorKind::kVerify;
  if (!verify_failure_.empty()) return peer + " certificate rejected: " + verify_failure_;
  if (error == NO_PEER_CERT) {
    return server ? "client sent no certificate (client-cert=require)"
                  : "server sent no certificate";
  }
  if (is_verify_error(error)) {
    return peer + " certificate rejected: " + verify_reason(error, verify_name_);
  }
  // The peer's verdict, when it sent one: it says more than the error we ran into.
  WOLFSSL_ALERT_HISTORY alerts{};
  wolfSSL_get_alert_history(ssl_, &alerts);
  const int alert = alerts.last_rx.level == alert_fatal ? alerts.last_rx.code : plaintext_alert();
  if (alert >= 0) {
    const std::string named = " (alert " + alert_name(alert) + ")";
    if (is_certificate_alert(alert)) return peer + " rejected our certificate" + named;
    error_kind_ = ErrorKind::kTls;
    switch (alert) {
      case certificate_required:
        return "server requires a client certificate; none was sent" + named;
      case wolfssl_alert_protocol_version:
        return peer + " refused our TLS versions" + named;
      case handshake_failure:
      case insufficient_security:
        return peer + " found no cipher, group or signature scheme in common" + named;
      case unrecognized_name:
        return "server does not serve the name we asked for" + named;
      case no_application_protocol:
        return peer + " shares no ALPN protocol with us" + named;
      case decrypt_error:
        return peer + " could not verify our handshake" + named;
      default:
        return peer + " ended the connection" + named;
    }
  }
  error_kind_ = ErrorKind::kTls;
  const bool looks_like_tls = peer_head_len_ == 0 || is_record_type(peer_head_[0]);
  if (!handshake_done_ && !looks_like_tls) {
    if (!server) return "server did not answer with TLS (is it a plaintext port?)";
    if (is_printable(peer_head_, peer_head_len_)) {
      return looks_like_http(peer_head_, peer_head_len_)
                 ? "plaintext on a TLS port (an HTTP request: the client used http://)"
                 : "plaintext on a TLS port";
    }
    return "not TLS on a TLS port (first byte " + hex_byte(peer_head_[0]) + ")";
  }
  if (!handshake_done_ &&
      (error == VERSION_ERROR || alerts.last_tx.code == wolfssl_alert_protocol_version)) {
    // The hello's legacy_version: a client that can do TLS 1.3 says so in an extension,
    // which wolfSSL would have taken, so what failed is an older offer.
    const bool hello =
        peer_head_len_ >= 11 && peer_head_[0] == 0x16 && peer_head_[5] == (server ? 0x01 : 0x02);
    const int version = hello ? (peer_head_[9] << 8) | peer_head_[10] : 0;
    const std::string offered = version_name(version);
    if (offered.empty()) return peer + " offered no TLS version we accept";
    if (version == 0x0303) {
      return server ? "client offered only TLS 1.2; --tls13-only is set"
                    : "server chose TLS 1.2; --tls13-only is set";
    }
    return peer + " offered only " + offered + "; ringside needs TLS 1.2 or later";
  }
  if (!handshake_done_ && error == MATCH_SUITE_ERROR) {
    return "no shared cipher: ringside offers TLS 1.3 suites and TLS 1.2 ECDHE with AES-GCM or "
           "ChaCha20-Poly1305 only";
  }
  if (!handshake_done_ &&
      (error == ECC_CURVE_ERROR || error == KEY_SHARE_ERROR || error == BAD_KEY_SHARE_DATA)) {
    return "no shared key exchange group: ringside offers X25519, P-256 and P-384";
  }
  if (error == VERIFY_MAC_ERROR || error == DECRYPT_ERROR) {
    return "a record from the " + peer + " failed its integrity check (corrupted in transit?)";
  }
  if (is_malformed_input(error)) {
    return std::string(handshake_done_ ? "malformed TLS record" : "malformed TLS handshake") +
           " from the " + peer;
  }
  return handshake_done_ ? "TLS error on the connection with the " + peer
                         : "TLS handshake with the " + peer + " failed";
}

TlsStatus TlsSession::handshake() {
  if (ssl_ == nullptr || failed_) return TlsStatus::kError;
  if (handshake_done_) return TlsStatus::kOk;
  int ret = role_ == Role::kServer ? wolfSSL_accept(ssl_) : wolfSSL_connect(ssl_);
  if (ret != WOLFSSL_SUCCESS) {
    TlsStatus status = fail(ret);
    if (status == TlsStatus::kWantRead) release_input_buffer();
    return status;
  }
  handshake_done_ = true;
  release_input_buffer();
  if (acme_only_ && !acme_challenge_) {
    failed_ = true;
    error_kind_ = ErrorKind::kTls;
    error_detail_ = "no certificate yet: only an ACME tls-alpn-01 validation is answered";
    return TlsStatus::kError;
  }
  return TlsStatus::kOk;
}

void TlsSession::release_input_buffer() {
#ifdef WOLFSSL_RINGSIDE_RELEASE_INPUT
  // Our wolfSSL keeps its record buffer from one record to the next (no free, zeroing
  // and malloc per record: tools/wolfssl-keep-input-buffer.patch); once the input is
  // drained it goes, so an idle session holds none.
  if (input_pending() == 0) wolfSSL_ringside_release_input(ssl_);
#endif
}

TlsStatus TlsSession::read(uint8_t* out, size_t cap, size_t* n) {
  *n = 0;
  if (ssl_ == nullptr || failed_) return TlsStatus::kError;
  if (cap == 0) return TlsStatus::kOk;
  int want = cap > static_cast<size_t>(INT32_MAX) ? INT32_MAX : static_cast<int>(cap);
  int ret = wolfSSL_read(ssl_, out, want);
  if (ret > 0) {
    // wolfSSL completes the handshake inside read() when the caller skipped handshake().
    handshake_done_ = true;
    *n = static_cast<size_t>(ret);
    return TlsStatus::kOk;
  }
  TlsStatus status = fail(ret);
  if (status == TlsStatus::kWantRead) release_input_buffer();
  return status;
}

TlsStatus TlsSession::write(const uint8_t* data, size_t len) {
  if (ssl_ == nullptr || failed_) return TlsStatus::kError;
  while (len > 0) {
    int chunk = len > (1u << 30) ? (1 << 30) : static_cast<int>(len);
    int ret = wolfSSL_write(ssl_, data, chunk);
    if (ret <= 0) return fail(ret);
    data += ret;
    len -= static_cast<size_t>(ret);
  }
  return TlsStatus::kOk;
}

void TlsSession::shutdown() {
  if (ssl_ == nullptr || failed_) return;
  // One call queues close_notify; we do not wait for the peer's (the proxy closes).
  wolfSSL_shutdown(ssl_);
}

std::string_view TlsSession::protocol() const {
  if (ssl_ == nullptr) return {};
  const char* v = wolfSSL_get_version(ssl_);
  return v ? v : "";
}

std::string_view TlsSession::cipher() const {
  if (ssl_ == nullptr) return {};
  const char* c = wolfSSL_get_cipher_name(ssl_);
  return c ? c : "";
}

bool TlsSession::tls13() const {
  return ssl_ != nullptr && wolfSSL_version(ssl_) == TLS1_3_VERSION;
}

bool TlsSession::offer_alpn(std::string_view list) {
  if (ssl_ == nullptr) return false;
  std::string copy(list);  // wolfSSL_UseALPN takes a mutable buffer
  return wolfSSL_UseALPN(ssl_, copy.data(), static_cast<unsigned>(copy.size()),
                         WOLFSSL_ALPN_FAILED_ON_MISMATCH) == WOLFSSL_SUCCESS;
}

std::string_view TlsSession::alpn() const {
  if (ssl_ == nullptr) return {};
  char* id = nullptr;
  word16 len = 0;
  // The negotiated id is the only ALPN entry a session holds (the offered or accepted
  // list stays on the CTX); wolfSSL reports "not found" when none was negotiated.
  if (wolfSSL_ALPN_GetProtocol(ssl_, &id, &len) != WOLFSSL_SUCCESS || id == nullptr) return {};
  return {id, len};
}

bool TlsSession::resumed() const { return ssl_ != nullptr && wolfSSL_session_reused(ssl_) == 1; }

Result<CertInfo> TlsSession::peer_certificate() const {
  CertInfo info;
  if (peer_der_.empty()) {
    return make_error(ErrorKind::kVerify, Side::kInternal, "no peer certificate");
  }
  if (!detail::decode_certificate(peer_der_, &info, nullptr)) {
    return make_error(ErrorKind::kVerify, Side::kInternal, "peer certificate unreadable");
  }
  return info;
}

void TlsSession::keep_peer_certificate(std::vector<uint8_t> der) { peer_der_ = std::move(der); }

bool TlsSession::admit_peer(const CertInfo& leaf, bool verified) {
  if (peer_check_ == nullptr || peer_check_(peer_check_arg_, leaf, verified)) return true;
  peer_refused_ = true;
  return false;
}

int verify_callback(int preverify_ok, WOLFSSL_X509_STORE_CTX* store) {
  auto* session = static_cast<TlsSession*>(store->userCtx);
  if (session == nullptr) return preverify_ok;
  if (!preverify_ok) {
    session->record_verify_failure(verify_reason(store->error, session->verify_name()));
    return 0;
  }
  if (store->error_depth != 0) return 1;
  // The leaf: store->certs[0] is its DER as the peer sent it.
  CertInfo leaf;
  bool decoded = session->take_early_leaf(&leaf);  // decoded by peer_leaf_callback
  if (!decoded && store->certs != nullptr && store->totalCerts > 0 &&
      store->certs[0].buffer != nullptr) {
    const uint8_t* der = store->certs[0].buffer;
    detail::Der copy(der, der + store->certs[0].length);
    decoded = detail::decode_certificate(copy, &leaf, nullptr);
    if (decoded) session->keep_peer_certificate(std::move(copy));
  }
  // A client must find the expected service in a DNS SAN: a certificate with no SAN
  // would make wolfSSL fall back to the CN, which ringside never accepts.
  if (!session->verify_name().empty() && (!decoded || leaf.dns_sans.empty())) {
    session->record_verify_failure("name mismatch: no DNS SAN (the CN is not used), wanted " +
                                   session->verify_name());
    return 0;
  }
  if (!session->verify_uri().empty()) {
    bool found = false;
    std::string have;
    for (const std::string& uri : leaf.uri_sans) {
      found = found || uri == session->verify_uri();
      have += (have.empty() ? "" : ",") + uri;
    }
    if (!decoded || !found) {
      session->record_verify_failure("URI SAN mismatch: wanted " + session->verify_uri() +
                                     ", have [" + have + "]");
      return 0;
    }
  }
  // A server's check of the client's identity (authorization, docs/authz.md): refused
  // here, the connection costs what a failed verification costs.
  if (decoded && !session->admit_peer(leaf, /*verified=*/true)) {
    session->record_verify_failure("client identity not allowed");
    return 0;
  }
  return 1;
}

// wolfssl-peer-leaf-callback.patch: the client's leaf as it sent it, before wolfSSL checks
// any signature (the chain's, then CertificateVerify's: over a million instructions for
// ECDSA P-256). An identity the listener would refuse anyway is refused here, so a denied
// connection costs what a handshake with an unknown CA costs. Nothing is proven about the
// leaf yet: this only refuses; an allowed one is checked again once verified.
int peer_leaf_callback(void* arg, const unsigned char* der, unsigned int length) {
  auto* session = static_cast<TlsSession*>(arg);
  if (session == nullptr || !session->wants_early_peer_check()) return 1;
  CertInfo leaf;
  detail::Der copy(der, der + length);
  if (!detail::decode_certificate(copy, &leaf, nullptr)) return 1;
  if (!session->admit_peer(leaf, /*verified=*/false)) {
    session->record_verify_failure("client identity not allowed");
    return 0;
  }
  // The same leaf reaches verify_callback once verified: decoded once, not twice.
  session->keep_early_leaf(std::move(leaf), std::move(copy));
  return 1;
}

}  // namespace ringside::tls
