// Certificate inspection and identity validation (no TLS connection involved).
#include <algorithm>
#include <cctype>
#include <memory>

#include "ringside/tls.h"

// clang-format off
#include <wolfssl/options.h>
// clang-format on
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "tls/pem.h"

namespace ringside::tls {
namespace {

Error invalid(std::string* detail, std::string why) {
  if (detail) *detail = std::move(why);
  return make_error(ErrorKind::kConfig, Side::kInternal, "invalid certificate or key");
}

// RFC 6125 section 6.4.3: a wildcard is only the whole left-most label, never matches
// across a dot, and never matches the parent domain itself.
bool dns_name_matches(std::string_view pattern, std::string_view name) {
  auto lower_equal = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(a[i])) !=
          std::tolower(static_cast<unsigned char>(b[i]))) {
        return false;
      }
    }
    return true;
  };
  if (pattern.size() > 2 && pattern.substr(0, 2) == "*.") {
    size_t dot = name.find('.');
    if (dot == std::string_view::npos || dot == 0) return false;
    return lower_equal(pattern.substr(1), name.substr(dot));
  }
  return lower_equal(pattern, name);
}

struct CertManager {
  WOLFSSL_CERT_MANAGER* cm = wolfSSL_CertManagerNew();
  ~CertManager() {
    if (cm) wolfSSL_CertManagerFree(cm);
  }
};

std::string chain_failure(int ret) {
  switch (ret) {
    case ASN_NO_SIGNER_E:
      return "unable to get local issuer certificate";
    case ASN_AFTER_DATE_E:
      return "certificate has expired";
    case ASN_BEFORE_DATE_E:
      return "certificate is not yet valid";
    case ASN_SIG_CONFIRM_E:
      return "certificate signature failure";
    default:
      return detail::error_string(ret);
  }
}

}  // namespace

Result<CertInfo> inspect_certificate(std::string_view pem, std::string* detail) {
  std::string why;
  if (pem.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return invalid(detail, "certificate PEM is empty");
  }
  auto der = detail::pem_certificates(pem, &why);
  if (der.empty()) return invalid(detail, why);
  CertInfo info;
  if (!detail::decode_certificate(der.front(), &info, &why)) return invalid(detail, why);
  return info;
}

std::vector<CertInfo> inspect_bundle(std::string_view pem) {
  std::vector<CertInfo> out;
  for (const auto& der : detail::pem_certificates(pem, nullptr)) {
    CertInfo info;
    if (detail::decode_certificate(der, &info, nullptr)) out.push_back(std::move(info));
  }
  return out;
}

namespace detail {

bool key_matches_certificate(const Der& cert, const PrivateKeyDer& key) {
  global_init();
  // Let wolfSSL compare the certificate's public key with the private key.
  std::unique_ptr<WOLFSSL_CTX, decltype(&wolfSSL_CTX_free)> ctx(
      wolfSSL_CTX_new(wolfTLS_server_method()), &wolfSSL_CTX_free);
  return ctx &&
         wolfSSL_CTX_use_certificate_buffer(ctx.get(), cert.data(), static_cast<long>(cert.size()),
                                            WOLFSSL_FILETYPE_ASN1) == WOLFSSL_SUCCESS &&
         wolfSSL_CTX_use_PrivateKey_buffer(ctx.get(), key.der.data(),
                                           static_cast<long>(key.der.size()),
                                           WOLFSSL_FILETYPE_ASN1) == WOLFSSL_SUCCESS &&
         wolfSSL_CTX_check_private_key(ctx.get()) == WOLFSSL_SUCCESS;
}

}  // namespace detail

Result<CertInfo> validate_identity(const Identity& identity, std::string_view trust_pem,
                                   std::string_view required_san, int64_t now,
                                   std::string* detail) {
  global_init();
  std::string why;
  if (identity.cert_chain_pem.find_first_not_of(" \t\r\n") == std::string::npos) {
    return invalid(detail, "certificate PEM is empty");
  }
  auto chain = detail::pem_certificates(identity.cert_chain_pem, &why);
  if (chain.empty()) return invalid(detail, "certificate: " + why);
  if (!why.empty()) return invalid(detail, "certificate chain: " + why);
  CertInfo leaf;
  if (!detail::decode_certificate(chain.front(), &leaf, &why)) {
    return invalid(detail, "certificate: " + why);
  }
  detail::PrivateKeyDer key;
  if (!detail::decode_private_key(identity.key_pem, &key, &why)) {
    return invalid(detail, "key: " + why);
  }

  if (now < leaf.not_before) {
    return invalid(detail, "certificate is not yet valid (not before " +
                               detail::iso8601(leaf.not_before) + ")");
  }
  if (now > leaf.not_after) {
    return invalid(detail,
                   "certificate has expired (not after " + detail::iso8601(leaf.not_after) + ")");
  }

  if (!required_san.empty()) {
    bool found = false;
    for (const auto& san : leaf.dns_sans) found = found || dns_name_matches(san, required_san);
    if (!found) {
      std::string have;
      for (const auto& san : leaf.dns_sans) have += (have.empty() ? "" : ",") + san;
      return invalid(detail,
                     "SAN mismatch: wanted " + std::string(required_san) + ", have [" + have + "]");
    }
  }

  // After the names: a certificate for another service says so, whatever its key.
  if (!detail::key_matches_certificate(chain.front(), key)) {
    return invalid(detail, "private key does not match the certificate");
  }

  if (!trust_pem.empty()) {
    CertManager manager;
    if (manager.cm == nullptr) return invalid(detail, "out of memory");
    if (wolfSSL_CertManagerLoadCABuffer(
            manager.cm, reinterpret_cast<const unsigned char*>(trust_pem.data()),
            static_cast<long>(trust_pem.size()), WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
      return invalid(detail, "trust bundle does not load");
    }
    // A chain certificate that is itself in the trust bundle is a trust anchor (a peer
    // trusting the intermediate): the chain is verified up to it, not through it.
    size_t depth = chain.size();
    std::string ignored;
    auto anchors = detail::pem_certificates(trust_pem, &ignored);
    for (size_t i = 1; i < depth; ++i) {
      if (std::find(anchors.begin(), anchors.end(), chain[i]) != anchors.end()) depth = i;
    }
    // Verify from the top intermediate down, trusting each one only once it verified.
    for (size_t i = depth; i-- > 0;) {
      const auto& der = chain[i];
      int ret = wolfSSL_CertManagerVerifyBuffer(
          manager.cm, der.data(), static_cast<long>(der.size()), WOLFSSL_FILETYPE_ASN1);
      if (ret != WOLFSSL_SUCCESS) {
        std::string which = i == 0 ? "certificate" : "chain certificate " + std::to_string(i);
        return invalid(detail,
                       which + " does not verify against the trust bundle: " + chain_failure(ret));
      }
      if (i > 0 &&
          wolfSSL_CertManagerLoadCABuffer(manager.cm, der.data(), static_cast<long>(der.size()),
                                          WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS) {
        return invalid(detail, "chain certificate " + std::to_string(i) + " is not a CA");
      }
    }
  }
  return leaf;
}

}  // namespace ringside::tls
