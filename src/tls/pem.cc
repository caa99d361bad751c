#include "tls/pem.h"

// clang-format off
#include <wolfssl/options.h>
// clang-format on
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <algorithm>
#include <ctime>
#include <memory>

namespace ringside::tls::detail {
namespace {

constexpr std::string_view kBeginCert = "-----BEGIN CERTIFICATE-----";
constexpr std::string_view kEndCert = "-----END CERTIFICATE-----";

// "/C=US/O=x/CN=y" (wolfSSL's one-line form) -> "C=US, O=x, CN=y".
std::string readable_name(const char* oneline) {
  std::string out;
  std::string_view in(oneline);
  if (!in.empty() && in.front() == '/') in.remove_prefix(1);
  for (size_t i = 0; i < in.size(); ++i) {
    // A '/' starts the next attribute only when an "XX=" follows it.
    if (in[i] == '/') {
      size_t eq = in.find('=', i + 1);
      size_t next_slash = in.find('/', i + 1);
      if (eq != std::string_view::npos && eq < next_slash && eq - i <= 32) {
        out += ", ";
        continue;
      }
    }
    out += in[i];
  }
  return out;
}

bool decode_date(const uint8_t* raw, int raw_len, int64_t* unix_seconds) {
  const uint8_t* date = nullptr;
  uint8_t format = 0;
  int length = 0;
  if (raw == nullptr || wc_GetDateInfo(raw, raw_len, &date, &format, &length) < 0) return false;
  struct tm tm {};
  if (wc_GetDateAsCalendarTime(date, length, format, &tm) != 0) return false;
  *unix_seconds = static_cast<int64_t>(timegm(&tm));
  return true;
}

KeyType rsa_key_type(int bits) { return bits == 2048 ? KeyType::kRsa2048 : KeyType::kOther; }

}  // namespace

std::vector<Der> pem_certificates(std::string_view pem, std::string* detail) {
  std::vector<Der> out;
  size_t pos = 0;
  while (true) {
    size_t begin = pem.find(kBeginCert, pos);
    if (begin == std::string_view::npos) break;
    size_t end = pem.find(kEndCert, begin);
    if (end == std::string_view::npos) {
      if (detail) *detail = "truncated PEM: certificate without an END CERTIFICATE line";
      break;
    }
    end += kEndCert.size();
    std::string_view block = pem.substr(begin, end - begin);
    Der der(block.size());
    int n = wc_CertPemToDer(reinterpret_cast<const unsigned char*>(block.data()),
                            static_cast<int>(block.size()), der.data(),
                            static_cast<int>(der.size()), CERT_TYPE);
    if (n <= 0) {
      if (detail) *detail = "malformed certificate PEM: " + error_string(n);
      break;
    }
    der.resize(static_cast<size_t>(n));
    out.push_back(std::move(der));
    pos = end;
  }
  if (out.empty() && detail && detail->empty()) *detail = "no PEM certificate found";
  return out;
}

bool decode_certificate(const Der& der, CertInfo* info, std::string* detail) {
  // DecodedCert is several KB: keep it off the stack.
  auto dc = std::make_unique<DecodedCert>();
  wc_InitDecodedCert(dc.get(), der.data(), static_cast<word32>(der.size()), nullptr);
  int ret = wc_ParseCert(dc.get(), CERT_TYPE, NO_VERIFY, nullptr);
  if (ret != 0) {
    wc_FreeDecodedCert(dc.get());
    if (detail) *detail = "certificate does not parse: " + error_string(ret);
    return false;
  }
  CertInfo ci;
  ci.subject = readable_name(dc->subject);
  ci.issuer = readable_name(dc->issuer);
  ci.serial_hex = to_hex(dc->serial, static_cast<size_t>(dc->serialSz));
  for (DNS_entry* name = dc->altNames; name != nullptr; name = name->next) {
    if (name->type == ASN_DNS_TYPE && name->name != nullptr) {
      ci.dns_sans.emplace_back(name->name, static_cast<size_t>(name->len));
    } else if (name->type == ASN_URI_TYPE && name->name != nullptr) {
      ci.uri_sans.emplace_back(name->name, static_cast<size_t>(name->len));
    }
  }
#if !defined(OPENSSL_EXTRA) || defined(WOLFSSL_ALT_NAMES_NO_REV)
  // Without OPENSSL_EXTRA wolfSSL prepends each name: restore the certificate's order.
  std::reverse(ci.dns_sans.begin(), ci.dns_sans.end());
  std::reverse(ci.uri_sans.begin(), ci.uri_sans.end());
#endif
  if (dc->keyOID == ECDSAk) {
    ci.key_type = dc->pkCurveOID == ECC_SECP256R1_OID ? KeyType::kEcdsaP256 : KeyType::kOther;
  } else if (dc->keyOID == RSAk) {
    RsaKey rsa;
    word32 idx = 0;
    if (wc_InitRsaKey(&rsa, nullptr) == 0) {
      if (wc_RsaPublicKeyDecode(dc->publicKey, &idx, &rsa, dc->pubKeySize) == 0) {
        ci.key_type = rsa_key_type(wc_RsaEncryptSize(&rsa) * 8);
      }
      wc_FreeRsaKey(&rsa);
    }
  }
  bool dates_ok = decode_date(dc->beforeDate, dc->beforeDateLen, &ci.not_before) &&
                  decode_date(dc->afterDate, dc->afterDateLen, &ci.not_after);
  ci.is_ca = dc->isCA != 0;
  if (dc->isCA && dc->pathLengthSet) ci.path_len = dc->pathLength;
  wc_FreeDecodedCert(dc.get());
  if (!dates_ok) {
    if (detail) *detail = "certificate validity dates do not parse";
    return false;
  }
  uint8_t digest[WC_SHA256_DIGEST_SIZE];
  wc_Sha256Hash(der.data(), static_cast<word32>(der.size()), digest);
  ci.sha256_hex = to_hex(digest, sizeof(digest));
  *info = std::move(ci);
  return true;
}

bool decode_private_key(std::string_view pem, PrivateKeyDer* key, std::string* detail) {
  auto set = [detail](std::string text) {
    if (detail) *detail = std::move(text);
    return false;
  };
  if (pem.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return set("private key PEM is empty");
  }
  size_t begin = pem.find("-----BEGIN ");
  if (begin == std::string_view::npos) return set("no PEM private key found");
  size_t header_end = pem.find("-----", begin + 11);
  std::string_view header =
      header_end == std::string_view::npos ? pem.substr(begin) : pem.substr(begin, header_end);
  if (header.find("ENCRYPTED") != std::string_view::npos ||
      pem.find("Proc-Type: 4,ENCRYPTED") != std::string_view::npos) {
    return set("private key is encrypted (an unencrypted key is required)");
  }
  if (header.find("PRIVATE KEY") == std::string_view::npos) {
    return set("no PEM private key found");
  }
  if (pem.find("-----END ", begin) == std::string_view::npos) {
    return set("truncated PEM: private key without an END line");
  }
  Der der(pem.size());
  int n = wc_KeyPemToDer(reinterpret_cast<const unsigned char*>(pem.data()),
                         static_cast<int>(pem.size()), der.data(), static_cast<int>(der.size()),
                         nullptr);
  if (n <= 0) return set("malformed private key PEM: " + error_string(n));
  der.resize(static_cast<size_t>(n));
  word32 offset = 0;
  if (wc_GetPkcs8TraditionalOffset(der.data(), &offset, static_cast<word32>(der.size())) < 0) {
    offset = 0;
  }
  Der traditional(der.begin() + offset, der.end());

  ecc_key ecc;
  if (wc_ecc_init(&ecc) == 0) {
    word32 idx = 0;
    int ret = wc_EccPrivateKeyDecode(traditional.data(), &idx, &ecc,
                                     static_cast<word32>(traditional.size()));
    bool p256 = ret == 0 && ecc.dp != nullptr && ecc.dp->id == ECC_SECP256R1;
    wc_ecc_free(&ecc);
    if (ret == 0) {
      key->der = std::move(traditional);
      key->type = p256 ? KeyType::kEcdsaP256 : KeyType::kOther;
      key->is_rsa = false;
      return true;
    }
  }
  RsaKey rsa;
  if (wc_InitRsaKey(&rsa, nullptr) == 0) {
    word32 idx = 0;
    int ret = wc_RsaPrivateKeyDecode(traditional.data(), &idx, &rsa,
                                     static_cast<word32>(traditional.size()));
    int bits = ret == 0 ? wc_RsaEncryptSize(&rsa) * 8 : 0;
    wc_FreeRsaKey(&rsa);
    if (ret == 0) {
      key->der = std::move(traditional);
      key->type = rsa_key_type(bits);
      key->is_rsa = true;
      return true;
    }
  }
  return set("private key is neither an ECDSA nor an RSA key, or is truncated");
}

std::string der_to_pem(const uint8_t* der, size_t len, int wolf_type) {
  std::string pem(len * 4 / 3 + len / 48 + 128, '\0');
  int n = wc_DerToPem(der, static_cast<word32>(len), reinterpret_cast<byte*>(pem.data()),
                      static_cast<word32>(pem.size()), wolf_type);
  if (n <= 0) return {};
  pem.resize(static_cast<size_t>(n));
  return pem;
}

std::string error_string(int code) {
  char buf[WOLFSSL_MAX_ERROR_SZ] = {};
  // SetErrorString() takes the code back as an int: the sign survives the cast.
  wolfSSL_ERR_error_string_n(static_cast<unsigned long>(static_cast<long>(code)), buf, sizeof(buf));
  return std::string(buf) + " (" + std::to_string(code) + ")";
}

std::string to_hex(const uint8_t* data, size_t len) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (size_t i = 0; i < len; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 0xf];
  }
  return out;
}

std::string iso8601(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace ringside::tls::detail
