// Internal helpers shared by the TLS layer and the issuer: PEM splitting, certificate
// decoding into CertInfo, private key decoding, wolfSSL error strings. Not a public
// interface: only src/tls/ and src/certs/ include it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ringside/tls.h"

namespace ringside::tls::detail {

using Der = std::vector<uint8_t>;

// The DER of every "CERTIFICATE" block of a PEM text, in order. On a malformed block
// (no END line, bad base64) it stops and, when detail is not null, says why.
std::vector<Der> pem_certificates(std::string_view pem, std::string* detail);

// Decodes one DER certificate (no signature check).
bool decode_certificate(const Der& der, CertInfo* info, std::string* detail);

// A private key decoded from PEM: the traditional (not PKCS#8) DER and its type.
struct PrivateKeyDer {
  Der der;
  KeyType type = KeyType::kOther;
  bool is_rsa = false;
};
bool decode_private_key(std::string_view pem, PrivateKeyDer* key, std::string* detail);

// Whether key is the private key of the certificate's public key.
bool key_matches_certificate(const Der& cert, const PrivateKeyDer& key);

// DER -> PEM with the given wolfSSL type (CERT_TYPE, ECC_PRIVATEKEY_TYPE, ...).
std::string der_to_pem(const uint8_t* der, size_t len, int wolf_type);

// "ASN no signer error to confirm failure (-188)".
std::string error_string(int code);
std::string to_hex(const uint8_t* data, size_t len);
// Unix seconds -> "2024-05-01T12:00:00Z".
std::string iso8601(int64_t unix_seconds);

}  // namespace ringside::tls::detail
