// A small private CA built on wolfSSL's certificate generation: key generation, a
// self-signed CA, leaf certificates for a list of DNS names, and PKCS#10 requests.
// Used by the local-issuer certificate source, the remote-CA source (CSR) and the
// ringside-ca tool. Everything is PEM in memory; nothing here touches files.
// These calls generate keys and sign: they belong on the control thread, never on a
// worker.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ringside/result.h"
#include "ringside/tls.h"

namespace ringside::certs {

// Generates a private key (tls::KeyType::kEcdsaP256 or kRsa2048) as unencrypted PEM
// ("EC PRIVATE KEY" / "RSA PRIVATE KEY"). kOther is rejected.
Result<std::string> generate_key(tls::KeyType type, std::string* detail);

struct CaOptions {
  std::string common_name = "ringside CA";
  tls::KeyType key_type = tls::KeyType::kEcdsaP256;
  std::chrono::seconds lifetime = std::chrono::hours(24 * 3650);
  // Start of validity in Unix seconds; 0 means now minus 5 minutes (clock skew).
  int64_t not_before = 0;
};

// Creates a self-signed CA: basicConstraints CA:TRUE (critical), keyUsage keyCertSign
// and cRLSign (critical), subject key identifier. The Identity holds the CA
// certificate and its new key.
Result<tls::Identity> create_ca(const CaOptions& options, std::string* detail);

// Creates a subordinate CA signed by parent (parent.cert_chain_pem's first certificate
// and parent.key_pem, itself a CA): basicConstraints CA:TRUE with pathLenConstraint 0
// (critical; it issues leaves, never another CA), keyUsage keyCertSign and cRLSign,
// subject and authority key identifiers, a validity inside the parent's. The returned
// chain is the new CA followed by every certificate of parent.cert_chain_pem: the layout
// --ca-cert takes.
Result<tls::Identity> create_intermediate(const tls::Identity& parent, const CaOptions& options,
                                          std::string* detail);

struct LeafOptions {
  // At least one; the first is also the subject CN (verifiers ignore the CN).
  std::vector<std::string> dns_sans;
  // URI SANs after the DNS SANs: SPIFFE IDs (spiffe://TRUST-DOMAIN/PATH), checked as such.
  std::vector<std::string> uri_sans;
  tls::KeyType key_type = tls::KeyType::kEcdsaP256;
  // When not empty, this key (PEM, unencrypted) is certified instead of a new one.
  std::string key_pem;
  std::chrono::seconds lifetime = std::chrono::hours(24 * 7);
  // Start of validity in Unix seconds; 0 means now minus 5 minutes (clock skew).
  int64_t not_before = 0;
};

// Issues a leaf signed by ca (ca.cert_chain_pem's first certificate and ca.key_pem):
// extKeyUsage serverAuth+clientAuth, keyUsage digitalSignature (+keyEncipherment for
// RSA), a random 128-bit serial, issuer = the CA's subject, subject and authority key
// identifiers. ca.cert_chain_pem may hold the issuing CA's chain (the issuing CA first,
// then its parents; each must be a CA and issue the one before it). The returned chain
// is the leaf followed by that chain without a self-signed root (peers trust the root):
// the leaf alone for a flat CA.
Result<tls::Identity> issue_leaf(const tls::Identity& ca, const LeafOptions& options,
                                 std::string* detail);

// Creates a PKCS#10 certificate request (PEM) for key_pem with subject CN = the first
// SAN and the DNS SANs in a requested-extensions attribute.
Result<std::string> create_csr(std::string_view key_pem, const std::vector<std::string>& dns_sans,
                               std::string* detail);

// The key type of a PEM private key (kOther when it does not parse).
tls::KeyType private_key_type(std::string_view key_pem);

}  // namespace ringside::certs
