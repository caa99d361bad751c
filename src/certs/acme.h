// ACME (RFC 8555) as a certificate source, and the pieces it is made of: base64url, the
// account key's JWK and JWS (ES256, RFC 7515/7518), key authorizations (RFC 8555 8.1), and
// the challenge answers the responders serve (http-01 on a plaintext port; tls-alpn-01,
// RFC 8737, on the ingress listeners). Control thread only, except AcmeChallenges, which
// the responders read from their own threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "certs/sources.h"
#include "ringside/result.h"

namespace ringside::certs {

// base64url without padding (RFC 7515 2).
std::string base64url(std::string_view bytes);
// Standard base64 (with or without padding, whitespace ignored) to bytes; false on junk.
bool base64_decode(std::string_view text, std::string* out);
// SHA-256 of bytes (32 raw bytes).
std::string sha256_bytes(std::string_view bytes);
// The DER inside the first PEM block of text ("-----BEGIN ...-----").
bool pem_body_der(std::string_view pem, std::string* der);

// An ACME account key: ECDSA P-256, signing with ES256. (Also the tls-alpn-01
// certificate's key.)
class AcmeAccountKey {
 public:
  // From an "EC PRIVATE KEY" PEM; P-256 only.
  static Result<AcmeAccountKey> from_pem(std::string_view pem, std::string* detail);
  // The public key as a JWK in RFC 7638's canonical form (members crv, kty, x, y in that
  // order, no whitespace): also what its thumbprint hashes.
  const std::string& jwk() const { return jwk_; }
  // base64url(SHA-256(jwk())) (RFC 7638).
  std::string thumbprint() const;
  // A flattened JWS JSON serialization (RFC 7515 7.2.2) of payload, protected by
  // {"alg":"ES256", "jwk" (kid empty) or "kid", "nonce", "url"}. payload "" is ACME's
  // POST-as-GET. The signature is r || s, 32 bytes each (RFC 7518 3.4).
  Result<std::string> sign(std::string_view url, std::string_view nonce, std::string_view kid,
                           std::string_view payload, std::string* detail) const;
  // An ECDSA signature (DER) of SHA-256(data), and the public key as a DER
  // SubjectPublicKeyInfo: for the tls-alpn-01 certificate.
  Result<std::string> sign_der(std::string_view data, std::string* detail) const;
  std::string public_key_der() const;

 private:
  std::shared_ptr<void> key_;  // ecc_key
  std::string jwk_;
};

// The tls-alpn-01 certificate (RFC 8737 3), PEM: self-signed by key, valid from an hour
// ago for a week, dNSName SAN = name and the critical id-pe-acmeIdentifier extension
// (1.3.6.1.5.5.7.1.31) holding OCTET STRING(SHA-256(key_authorization)).
Result<std::string> acme_tls_alpn_certificate(const AcmeAccountKey& key, std::string_view name,
                                              std::string_view key_authorization,
                                              std::string* detail);

// token "." thumbprint (RFC 8555 8.1).
std::string acme_key_authorization(std::string_view token, std::string_view thumbprint);

// The answers the ACME source currently wants validators to find. Written by the source
// (control thread), read by the responders.
class AcmeChallenges {
 public:
  void set_http01(const std::string& token, const std::string& key_authorization);
  // The key authorization for token; empty when none is wanted.
  std::string http01(const std::string& token) const;
  void clear();

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::string> http01_;
};

struct AcmeOptions {
  std::string directory_url;  // --acme-directory (https)
  std::string trust_path;     // --ca-trust: the ACME server's certificate chains to it
  // --acme-http-port: http-01 answered there ("ADDRESS:PORT"); empty: tls-alpn-01.
  std::string http_address;
  std::chrono::milliseconds timeout{10000};  // one request
  // An order's whole exchange (authorizations, challenges, finalization) gets this long.
  std::chrono::milliseconds order_timeout{60000};
  unsigned workers = 1;  // tls-alpn-01: the challenge context has one WOLFSSL_CTX per worker
};

// --acme-directory: an account key in --cert-dir (acme-account-key.pem, 0600; created
// once), an order for the service name, the chosen challenge answered, finalized with a
// CSR of a new key, the chain downloaded.
std::unique_ptr<CertificateSource> make_acme_source(AcmeOptions acme, IssuingOptions options);

}  // namespace ringside::certs
