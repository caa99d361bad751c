// The private CA: key generation, CA and leaf certificates, CSRs (wolfSSL certgen).
#include "ringside/certs.h"

// clang-format off
#include <wolfssl/options.h>
// clang-format on
#include <sys/random.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>

#include <cctype>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>

#include "ringside/authz.h"
#include "tls/pem.h"

namespace ringside::certs {
namespace {

using tls::KeyType;
using tls::detail::Der;

Error failure(std::string* detail, std::string why) {
  if (detail) *detail = std::move(why);
  return make_error(ErrorKind::kInternal, Side::kInternal, "certificate issuer");
}

constexpr int64_t kClockSkewSeconds = 5 * 60;
// Big enough for an RSA-2048 certificate with a few dozen SANs.
constexpr size_t kCertBufferSize = 8192;

struct Rng {
  WC_RNG rng{};
  bool ok = wc_InitRng(&rng) == 0;
  ~Rng() {
    if (ok) wc_FreeRng(&rng);
  }
};

// A private key loaded into wolfCrypt, either ECC or RSA.
class LoadedKey {
 public:
  LoadedKey() = default;
  LoadedKey(const LoadedKey&) = delete;
  LoadedKey& operator=(const LoadedKey&) = delete;
  ~LoadedKey() {
    if (ecc_) wc_ecc_free(ecc_.get());
    if (rsa_) wc_FreeRsaKey(rsa_.get());
  }

  bool generate(KeyType type, WC_RNG* rng, std::string* why) {
    if (type == KeyType::kEcdsaP256) {
      ecc_ = std::make_unique<ecc_key>();
      if (wc_ecc_init(ecc_.get()) != 0) return fail(why, "ECC init failed");
      int ret = wc_ecc_make_key_ex(rng, 32, ecc_.get(), ECC_SECP256R1);
      if (ret != 0) return fail(why, "ECDSA P-256 key generation failed: " + err(ret));
      return true;
    }
    if (type == KeyType::kRsa2048) {
      rsa_ = std::make_unique<RsaKey>();
      if (wc_InitRsaKey(rsa_.get(), nullptr) != 0) return fail(why, "RSA init failed");
      int ret = wc_MakeRsaKey(rsa_.get(), 2048, WC_RSA_EXPONENT, rng);
      if (ret != 0) return fail(why, "RSA-2048 key generation failed: " + err(ret));
      return true;
    }
    return fail(why, "unsupported key type (use ecdsa-p256 or rsa-2048)");
  }

  bool load(std::string_view pem, std::string* why) {
    tls::detail::PrivateKeyDer der;
    if (!tls::detail::decode_private_key(pem, &der, why)) return false;
    word32 idx = 0;
    if (der.is_rsa) {
      rsa_ = std::make_unique<RsaKey>();
      if (wc_InitRsaKey(rsa_.get(), nullptr) != 0) return fail(why, "RSA init failed");
      int ret = wc_RsaPrivateKeyDecode(der.der.data(), &idx, rsa_.get(),
                                       static_cast<word32>(der.der.size()));
      if (ret != 0) return fail(why, "RSA key does not decode: " + err(ret));
    } else {
      ecc_ = std::make_unique<ecc_key>();
      if (wc_ecc_init(ecc_.get()) != 0) return fail(why, "ECC init failed");
      int ret = wc_EccPrivateKeyDecode(der.der.data(), &idx, ecc_.get(),
                                       static_cast<word32>(der.der.size()));
      if (ret != 0) return fail(why, "ECC key does not decode: " + err(ret));
    }
    return true;
  }

  std::string to_pem() const {
    Der der(4096);
    int n = ecc_ ? wc_EccKeyToDer(ecc_.get(), der.data(), static_cast<word32>(der.size()))
                 : wc_RsaKeyToDer(rsa_.get(), der.data(), static_cast<word32>(der.size()));
    if (n <= 0) return {};
    return tls::detail::der_to_pem(der.data(), static_cast<size_t>(n),
                                   ecc_ ? ECC_PRIVATEKEY_TYPE : PRIVATEKEY_TYPE);
  }

  bool is_rsa() const { return rsa_ != nullptr; }
  // wolfSSL's key type for wc_MakeCert_ex / wc_SignCert_ex.
  int wolf_type() const { return ecc_ ? ECC_TYPE : RSA_TYPE; }
  void* wolf_key() const {
    return ecc_ ? static_cast<void*>(ecc_.get()) : static_cast<void*>(rsa_.get());
  }
  int signature_type() const { return ecc_ ? CTC_SHA256wECDSA : CTC_SHA256wRSA; }

 private:
  static bool fail(std::string* why, std::string text) {
    if (why) *why = std::move(text);
    return false;
  }
  static std::string err(int code) { return tls::detail::error_string(code); }

  std::unique_ptr<ecc_key> ecc_;
  std::unique_ptr<RsaKey> rsa_;
};

// ---- minimal DER helpers -------------------------------------------------------------

void append_length(Der* out, size_t len) {
  if (len < 0x80) {
    out->push_back(static_cast<uint8_t>(len));
    return;
  }
  uint8_t bytes[sizeof(size_t)];
  int n = 0;
  for (size_t v = len; v != 0; v >>= 8) bytes[n++] = static_cast<uint8_t>(v);
  out->push_back(static_cast<uint8_t>(0x80 | n));
  while (n > 0) out->push_back(bytes[--n]);
}

void append_tlv(Der* out, uint8_t tag, const uint8_t* data, size_t len) {
  out->push_back(tag);
  append_length(out, len);
  out->insert(out->end(), data, data + len);
}

struct Tlv {
  uint8_t tag = 0;
  size_t header = 0;  // tag + length bytes
  size_t length = 0;  // content bytes
  size_t total() const { return header + length; }
};

// Reads the TLV at data[0..avail); false if it does not fit.
bool read_tlv(const uint8_t* data, size_t avail, Tlv* tlv) {
  if (avail < 2) return false;
  tlv->tag = data[0];
  size_t len = data[1];
  size_t header = 2;
  if (len & 0x80) {
    size_t n = len & 0x7f;
    if (n == 0 || n > 4 || avail < 2 + n) return false;
    len = 0;
    for (size_t i = 0; i < n; ++i) len = (len << 8) | data[2 + i];
    header += n;
  }
  if (avail - header < len) return false;
  tlv->header = header;
  tlv->length = len;
  return true;
}

// wolfSSL 5.5.4 writes basicConstraints without the critical flag, and RFC 5280
// 4.2.1.9 wants it critical in CA certificates: rewrite the unsigned TBSCertificate in
// tbs[0..tbs_len) with the flag inserted. Returns the new length, or 0 on a parse error.
size_t mark_basic_constraints_critical(uint8_t* tbs, size_t tbs_len, size_t capacity) {
  static constexpr uint8_t kBasicConstraintsOid[] = {0x06, 0x03, 0x55, 0x1d, 0x13};
  static constexpr uint8_t kCritical[] = {0x01, 0x01, 0xff};
  Tlv outer;
  if (!read_tlv(tbs, tbs_len, &outer) || outer.tag != 0x30) return 0;
  Der body;  // new TBS content
  bool changed = false;
  for (size_t pos = outer.header; pos < outer.total();) {
    Tlv field;
    if (!read_tlv(tbs + pos, outer.total() - pos, &field)) return 0;
    const uint8_t* field_start = tbs + pos;
    if (field.tag != 0xa3) {
      body.insert(body.end(), field_start, field_start + field.total());
      pos += field.total();
      continue;
    }
    Tlv exts;
    const uint8_t* exts_start = field_start + field.header;
    if (!read_tlv(exts_start, field.length, &exts) || exts.tag != 0x30) return 0;
    Der new_exts;
    for (size_t e = exts.header; e < exts.total();) {
      Tlv ext;
      if (!read_tlv(exts_start + e, exts.total() - e, &ext)) return 0;
      const uint8_t* ext_start = exts_start + e;
      const uint8_t* content = ext_start + ext.header;
      bool is_bc = ext.length > sizeof(kBasicConstraintsOid) &&
                   std::memcmp(content, kBasicConstraintsOid, sizeof(kBasicConstraintsOid)) == 0;
      if (is_bc && content[sizeof(kBasicConstraintsOid)] != 0x01) {
        Der ext_content(content, content + sizeof(kBasicConstraintsOid));
        ext_content.insert(ext_content.end(), kCritical, kCritical + sizeof(kCritical));
        ext_content.insert(ext_content.end(), content + sizeof(kBasicConstraintsOid),
                           content + ext.length);
        append_tlv(&new_exts, 0x30, ext_content.data(), ext_content.size());
        changed = true;
      } else {
        new_exts.insert(new_exts.end(), ext_start, ext_start + ext.total());
      }
      e += ext.total();
    }
    Der seq;
    append_tlv(&seq, 0x30, new_exts.data(), new_exts.size());
    append_tlv(&body, 0xa3, seq.data(), seq.size());
    pos += field.total();
  }
  if (!changed) return tbs_len;
  Der out;
  append_tlv(&out, 0x30, body.data(), body.size());
  if (out.size() > capacity) return 0;
  std::memcpy(tbs, out.data(), out.size());
  return out.size();
}

// GeneralNames with one dNSName per DNS SAN, then one uniformResourceIdentifier per URI
// SAN: what wolfSSL's Cert.altNames holds.
bool encode_dns_sans(const std::vector<std::string>& sans, Cert* cert, std::string* why,
                     const std::vector<std::string>& uri_sans = {}) {
  Der names;
  for (const auto& san : sans) {
    append_tlv(&names, 0x82, reinterpret_cast<const uint8_t*>(san.data()), san.size());
  }
  for (const auto& uri : uri_sans) {  // uniformResourceIdentifier [6] IA5String
    append_tlv(&names, 0x86, reinterpret_cast<const uint8_t*>(uri.data()), uri.size());
  }
  Der seq;
  append_tlv(&seq, 0x30, names.data(), names.size());
  if (seq.size() > sizeof(cert->altNames)) {
    if (why) *why = "too many or too long SANs";
    return false;
  }
  std::memcpy(cert->altNames, seq.data(), seq.size());
  cert->altNamesSz = static_cast<int>(seq.size());
  return true;
}

// ASN.1 time with tag and length, as Cert.beforeDate/afterDate hold it.
int encode_time(int64_t unix_seconds, uint8_t* out) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  int year = tm.tm_year + 1900;
  char text[32];
  // RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  bool utc = year >= 1950 && year < 2050;
  strftime(text, sizeof(text), utc ? "%y%m%d%H%M%SZ" : "%Y%m%d%H%M%SZ", &tm);
  size_t len = std::strlen(text);
  out[0] = utc ? ASN_UTC_TIME : ASN_GENERALIZED_TIME;
  out[1] = static_cast<uint8_t>(len);
  std::memcpy(out + 2, text, len);
  return static_cast<int>(len + 2);
}

bool set_validity(Cert* cert, int64_t not_before, std::chrono::seconds lifetime) {
  int64_t now = static_cast<int64_t>(time(nullptr));
  int64_t start = not_before != 0 ? not_before : now - kClockSkewSeconds;
  int64_t end = (not_before != 0 ? not_before : now) + lifetime.count();
  if (lifetime.count() <= 0 || end <= start) return false;
  cert->beforeDateSz = encode_time(start, cert->beforeDate);
  cert->afterDateSz = encode_time(end, cert->afterDate);
  return true;
}

bool set_random_serial(Cert* cert) {
  uint8_t serial[16];
  if (getrandom(serial, sizeof(serial), 0) != static_cast<ssize_t>(sizeof(serial))) return false;
  // Positive and exactly 16 bytes in DER: top bit clear, next bit set.
  serial[0] = static_cast<uint8_t>((serial[0] & 0x7f) | 0x40);
  std::memcpy(cert->serial, serial, sizeof(serial));
  cert->serialSz = sizeof(serial);
  return true;
}

void set_common_name(Cert* cert, std::string_view cn) {
  size_t n = std::min(cn.size(), sizeof(cert->subject.commonName) - 1);
  std::memcpy(cert->subject.commonName, cn.data(), n);
  cert->subject.commonName[n] = '\0';
}

// Makes the body with the subject key, optionally patches it, signs with the signer key.
Result<std::string> make_and_sign(Cert* cert, const LoadedKey& subject_key, const LoadedKey& signer,
                                  bool is_ca, WC_RNG* rng, std::string* detail) {
  Der der(kCertBufferSize);
  int body = wc_MakeCert_ex(cert, der.data(), static_cast<word32>(der.size()),
                            subject_key.wolf_type(), subject_key.wolf_key(), rng);
  if (body <= 0)
    return failure(detail, "certificate encoding failed: " + tls::detail::error_string(body));
  size_t body_len = static_cast<size_t>(body);
  if (is_ca) {
    body_len = mark_basic_constraints_critical(der.data(), body_len, der.size());
    if (body_len == 0) return failure(detail, "certificate re-encoding failed");
  }
  int total =
      wc_SignCert_ex(static_cast<int>(body_len), signer.signature_type(), der.data(),
                     static_cast<word32>(der.size()), signer.wolf_type(), signer.wolf_key(), rng);
  if (total <= 0) {
    return failure(detail, "certificate signing failed: " + tls::detail::error_string(total));
  }
  return tls::detail::der_to_pem(der.data(), static_cast<size_t>(total), CERT_TYPE);
}

bool valid_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (char c : name) {
    bool ok =
        std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '*' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool key_is_of(const Der& cert, std::string_view key_pem) {
  tls::detail::PrivateKeyDer key;
  return tls::detail::decode_private_key(key_pem, &key, nullptr) &&
         tls::detail::key_matches_certificate(cert, key);
}

// The certificates a leaf is served with: the issuing CA's chain as --ca-cert holds it
// (the issuing CA first, then its parents), checked link by link (each a CA, within its
// validity, issued by the next), without a self-signed root (peers hold the root as their
// trust; sending it is only bytes). A flat CA gives "".
Result<std::string> served_ca_chain(const std::vector<Der>& ca_der, std::string* detail) {
  std::vector<tls::CertInfo> infos(ca_der.size());
  std::string why;
  for (size_t i = 0; i < ca_der.size(); ++i) {
    if (!tls::detail::decode_certificate(ca_der[i], &infos[i], &why)) {
      return failure(detail, "CA chain certificate " + std::to_string(i + 1) + ": " + why);
    }
    if (!infos[i].is_ca) {
      return failure(detail, "CA chain certificate " + std::to_string(i + 1) + " (" +
                                 infos[i].subject + ") is not a CA (basicConstraints)");
    }
    const int64_t now = static_cast<int64_t>(time(nullptr));
    if (now > infos[i].not_after || now < infos[i].not_before) {
      return failure(detail, "CA chain certificate " + std::to_string(i + 1) + " (" +
                                 infos[i].subject + ") is outside its validity (" +
                                 tls::detail::iso8601(infos[i].not_before) + " to " +
                                 tls::detail::iso8601(infos[i].not_after) + ")");
    }
    if (i > 0 && infos[i - 1].issuer != infos[i].subject) {
      return failure(detail, "CA chain does not link: certificate " + std::to_string(i) +
                                 " is issued by '" + infos[i - 1].issuer + "', certificate " +
                                 std::to_string(i + 1) + " is '" + infos[i].subject +
                                 "' (the issuing CA first, then its parents)");
    }
  }
  std::string pem;
  for (size_t i = 0; i < ca_der.size(); ++i) {
    if (infos[i].subject == infos[i].issuer) continue;  // a self-signed root
    pem += tls::detail::der_to_pem(ca_der[i].data(), ca_der[i].size(), CERT_TYPE);
  }
  return pem;
}

}  // namespace

Result<std::string> generate_key(KeyType type, std::string* detail) {
  Rng rng;
  if (!rng.ok) return failure(detail, "random number generator unavailable");
  LoadedKey key;
  std::string why;
  if (!key.generate(type, &rng.rng, &why)) return failure(detail, why);
  std::string pem = key.to_pem();
  if (pem.empty()) return failure(detail, "key encoding failed");
  return pem;
}

KeyType private_key_type(std::string_view key_pem) {
  tls::detail::PrivateKeyDer der;
  if (!tls::detail::decode_private_key(key_pem, &der, nullptr)) return KeyType::kOther;
  return der.type;
}

Result<tls::Identity> create_ca(const CaOptions& options, std::string* detail) {
  Rng rng;
  if (!rng.ok) return failure(detail, "random number generator unavailable");
  if (options.common_name.empty()) return failure(detail, "the CA needs a common name");
  LoadedKey key;
  std::string why;
  if (!key.generate(options.key_type, &rng.rng, &why)) return failure(detail, why);

  auto cert = std::make_unique<Cert>();
  wc_InitCert(cert.get());
  set_common_name(cert.get(), options.common_name);
  cert->isCA = 1;
  cert->selfSigned = 1;
  cert->sigType = key.signature_type();
  if (!set_validity(cert.get(), options.not_before, options.lifetime)) {
    return failure(detail, "the CA lifetime must be positive");
  }
  if (!set_random_serial(cert.get())) return failure(detail, "no randomness for the serial");
  if (wc_SetKeyUsage(cert.get(), "keyCertSign,cRLSign") != 0 ||
      wc_SetSubjectKeyIdFromPublicKey_ex(cert.get(), key.wolf_type(), key.wolf_key()) != 0 ||
      wc_SetAuthKeyIdFromPublicKey_ex(cert.get(), key.wolf_type(), key.wolf_key()) != 0) {
    return failure(detail, "cannot set the CA extensions");
  }
  auto pem = make_and_sign(cert.get(), key, key, /*is_ca=*/true, &rng.rng, detail);
  if (!pem) return pem.error();
  return tls::Identity{std::move(pem.value()), key.to_pem()};
}

Result<tls::Identity> create_intermediate(const tls::Identity& parent, const CaOptions& options,
                                          std::string* detail) {
  Rng rng;
  if (!rng.ok) return failure(detail, "random number generator unavailable");
  if (options.common_name.empty()) return failure(detail, "the CA needs a common name");
  std::string why;
  auto parent_der = tls::detail::pem_certificates(parent.cert_chain_pem, &why);
  if (parent_der.empty()) return failure(detail, "parent CA certificate: " + why);
  auto chain = served_ca_chain(parent_der, &why);
  if (!chain.ok()) return failure(detail, "parent " + why);
  tls::CertInfo parent_info;
  if (!tls::detail::decode_certificate(parent_der.front(), &parent_info, &why)) {
    return failure(detail, "parent CA certificate: " + why);
  }
  if (parent_info.path_len == 0) {
    return failure(detail, "the parent CA '" + parent_info.subject +
                               "' has pathLenConstraint 0: it may issue leaves, not another CA");
  }
  LoadedKey parent_key;
  if (!parent_key.load(parent.key_pem, &why)) return failure(detail, "parent CA key: " + why);
  if (!key_is_of(parent_der.front(), parent.key_pem)) {
    return failure(
        detail, "the parent CA key does not match its certificate (" + parent_info.subject + ")");
  }
  LoadedKey key;
  if (!key.generate(options.key_type, &rng.rng, &why)) return failure(detail, why);

  int64_t start =
      options.not_before != 0 ? options.not_before : static_cast<int64_t>(time(nullptr));
  if (start + options.lifetime.count() > parent_info.not_after) {
    return failure(detail, "the intermediate would outlive its parent CA (which expires " +
                               tls::detail::iso8601(parent_info.not_after) +
                               "): give a shorter lifetime");
  }
  auto cert = std::make_unique<Cert>();
  wc_InitCert(cert.get());
  set_common_name(cert.get(), options.common_name);
  cert->isCA = 1;
  cert->selfSigned = 0;
  // pathLenConstraint 0: it issues leaves, never another CA.
  cert->pathLen = 0;
  cert->pathLenSet = 1;
  cert->sigType = parent_key.signature_type();
  if (!set_validity(cert.get(), options.not_before, options.lifetime)) {
    return failure(detail, "the CA lifetime must be positive");
  }
  if (!set_random_serial(cert.get())) return failure(detail, "no randomness for the serial");
  const auto& issuer = parent_der.front();
  if (wc_SetIssuerRaw(cert.get(), issuer.data(), static_cast<int>(issuer.size())) != 0) {
    return failure(detail, "cannot copy the parent CA subject into the issuer");
  }
  if (wc_SetKeyUsage(cert.get(), "keyCertSign,cRLSign") != 0 ||
      wc_SetSubjectKeyIdFromPublicKey_ex(cert.get(), key.wolf_type(), key.wolf_key()) != 0 ||
      wc_SetAuthKeyIdFromPublicKey_ex(cert.get(), parent_key.wolf_type(), parent_key.wolf_key()) !=
          0) {
    return failure(detail, "cannot set the CA extensions");
  }
  auto pem = make_and_sign(cert.get(), key, parent_key, /*is_ca=*/true, &rng.rng, detail);
  if (!pem) return pem.error();
  // The layout --ca-cert takes: the new CA first, then every certificate of the parent's
  // file (its root included, so that the file alone is a complete trust for tools).
  std::string parents;
  for (const auto& der : parent_der) {
    parents += tls::detail::der_to_pem(der.data(), der.size(), CERT_TYPE);
  }
  return tls::Identity{std::move(pem.value()) + parents, key.to_pem()};
}

Result<tls::Identity> issue_leaf(const tls::Identity& ca, const LeafOptions& options,
                                 std::string* detail) {
  if (options.dns_sans.empty()) return failure(detail, "a leaf needs at least one DNS SAN");
  for (const auto& san : options.dns_sans) {
    if (!valid_dns_name(san)) return failure(detail, "not a DNS name: '" + san + "'");
  }
  for (const auto& uri : options.uri_sans) {
    authz::IdentityPattern id;
    std::string why;
    if (!authz::parse_pattern(uri, &id, &why) || id.kind != authz::IdentityPattern::Kind::kUri) {
      return failure(detail, "not a SPIFFE ID (spiffe://TRUST-DOMAIN/PATH): '" + uri + "'");
    }
  }
  Rng rng;
  if (!rng.ok) return failure(detail, "random number generator unavailable");
  std::string why;
  auto ca_der = tls::detail::pem_certificates(ca.cert_chain_pem, &why);
  if (ca_der.empty()) return failure(detail, "CA certificate: " + why);
  tls::CertInfo ca_info;
  if (!tls::detail::decode_certificate(ca_der.front(), &ca_info, &why)) {
    return failure(detail, "CA certificate: " + why);
  }
  if (!ca_info.is_ca) return failure(detail, "the CA certificate is not a CA (basicConstraints)");
  auto chain = served_ca_chain(ca_der, &why);
  if (!chain.ok()) return failure(detail, why);
  LoadedKey ca_key;
  if (!ca_key.load(ca.key_pem, &why)) return failure(detail, "CA key: " + why);
  if (!key_is_of(ca_der.front(), ca.key_pem)) {
    return failure(detail, "the CA key does not match the CA certificate (" + ca_info.subject +
                               ", the first certificate of the CA file)");
  }
  LoadedKey leaf_key;
  if (!options.key_pem.empty()) {
    if (!leaf_key.load(options.key_pem, &why)) return failure(detail, "leaf key: " + why);
  } else if (!leaf_key.generate(options.key_type, &rng.rng, &why)) {
    return failure(detail, why);
  }

  auto cert = std::make_unique<Cert>();
  wc_InitCert(cert.get());
  set_common_name(cert.get(), options.dns_sans.front());
  cert->isCA = 0;
  cert->selfSigned = 0;
  cert->sigType = ca_key.signature_type();
  if (!set_validity(cert.get(), options.not_before, options.lifetime)) {
    return failure(detail, "the certificate lifetime must be positive");
  }
  if (!set_random_serial(cert.get())) return failure(detail, "no randomness for the serial");
  if (!encode_dns_sans(options.dns_sans, cert.get(), &why, options.uri_sans)) {
    return failure(detail, why);
  }
  const auto& issuer = ca_der.front();
  const char* usage = leaf_key.is_rsa() ? "digitalSignature,keyEncipherment" : "digitalSignature";
  if (wc_SetIssuerRaw(cert.get(), issuer.data(), static_cast<int>(issuer.size())) != 0) {
    return failure(detail, "cannot copy the CA subject into the issuer");
  }
  if (wc_SetKeyUsage(cert.get(), usage) != 0 ||
      wc_SetExtKeyUsage(cert.get(), "serverAuth,clientAuth") != 0 ||
      wc_SetSubjectKeyIdFromPublicKey_ex(cert.get(), leaf_key.wolf_type(), leaf_key.wolf_key()) !=
          0 ||
      wc_SetAuthKeyIdFromPublicKey_ex(cert.get(), ca_key.wolf_type(), ca_key.wolf_key()) != 0) {
    return failure(detail, "cannot set the certificate extensions");
  }
  auto pem = make_and_sign(cert.get(), leaf_key, ca_key, /*is_ca=*/false, &rng.rng, detail);
  if (!pem) return pem.error();
  return tls::Identity{std::move(pem.value()) + *chain, leaf_key.to_pem()};
}

Result<std::string> create_csr(std::string_view key_pem, const std::vector<std::string>& dns_sans,
                               std::string* detail) {
  if (dns_sans.empty()) return failure(detail, "a CSR needs at least one DNS SAN");
  for (const auto& san : dns_sans) {
    if (!valid_dns_name(san)) return failure(detail, "not a DNS name: '" + san + "'");
  }
  Rng rng;
  if (!rng.ok) return failure(detail, "random number generator unavailable");
  std::string why;
  LoadedKey key;
  if (!key.load(key_pem, &why)) return failure(detail, "key: " + why);
  auto cert = std::make_unique<Cert>();
  wc_InitCert(cert.get());
  set_common_name(cert.get(), dns_sans.front());
  cert->sigType = key.signature_type();
  if (!encode_dns_sans(dns_sans, cert.get(), &why)) return failure(detail, why);
  Der der(kCertBufferSize);
  int body = wc_MakeCertReq_ex(cert.get(), der.data(), static_cast<word32>(der.size()),
                               key.wolf_type(), key.wolf_key());
  if (body <= 0) return failure(detail, "CSR encoding failed: " + tls::detail::error_string(body));
  int total =
      wc_SignCert_ex(body, key.signature_type(), der.data(), static_cast<word32>(der.size()),
                     key.wolf_type(), key.wolf_key(), &rng.rng);
  if (total <= 0) return failure(detail, "CSR signing failed: " + tls::detail::error_string(total));
  return tls::detail::der_to_pem(der.data(), static_cast<size_t>(total), CERTREQ_TYPE);
}

}  // namespace ringside::certs
