// inspect_certificate, inspect_bundle and validate_identity on good and bad material.
#include <gtest/gtest.h>

#include "tls_test_util.h"

namespace ringside::tls {
namespace {

using testing::make_ca;
using testing::make_leaf;
using testing::now_seconds;

struct Material {
  Identity ca, other_ca, leaf, other_leaf;
};

const Material& material() {
  static const Material* m = [] {
    auto* mat = new Material;
    mat->ca = make_ca();
    mat->other_ca = make_ca(KeyType::kEcdsaP256, "other CA");
    mat->leaf = make_leaf(mat->ca, {"app.sample-namespace", "*.apps.test"});
    mat->other_leaf = make_leaf(mat->ca, {"other.sample-namespace"});
    return mat;
  }();
  return *m;
}

// validate_identity's detail on failure, or "ok".
std::string validate(const Identity& id, std::string_view trust, std::string_view san,
                     int64_t now = now_seconds()) {
  std::string detail;
  auto r = validate_identity(id, trust, san, now, &detail);
  if (r.ok()) return "ok";
  EXPECT_EQ(detail.find('\n'), std::string::npos) << "detail must be one line: " << detail;
  EXPECT_FALSE(detail.empty());
  return detail;
}

TEST(InspectCertificate, ReportsTheLeafFacts) {
  const auto& m = material();
  std::string detail;
  auto info = inspect_certificate(m.leaf.cert_chain_pem, &detail);
  ASSERT_TRUE(info.ok()) << detail;
  EXPECT_EQ(info->subject, "CN=app.sample-namespace");
  EXPECT_EQ(info->issuer, "CN=test CA");
  EXPECT_EQ(info->dns_sans, (std::vector<std::string>{"app.sample-namespace", "*.apps.test"}));
  EXPECT_EQ(info->key_type, KeyType::kEcdsaP256);
  EXPECT_FALSE(info->is_ca);
  EXPECT_EQ(info->serial_hex.size(), 32u);
  EXPECT_EQ(info->sha256_hex.size(), 64u);
  EXPECT_NEAR(info->not_before, now_seconds() - 300, 5);
  EXPECT_NEAR(info->not_after - info->not_before, 86400 + 300, 5);
}

TEST(InspectCertificate, RejectsGarbageEmptyAndTruncated) {
  std::string detail;
  EXPECT_FALSE(inspect_certificate("", &detail).ok());
  EXPECT_NE(detail.find("empty"), std::string::npos) << detail;
  EXPECT_FALSE(inspect_certificate("hello world", &detail).ok());
  EXPECT_NE(detail.find("no PEM certificate"), std::string::npos) << detail;
  std::string pem = material().leaf.cert_chain_pem;
  EXPECT_FALSE(inspect_certificate(pem.substr(0, pem.size() / 2), &detail).ok());
  EXPECT_NE(detail.find("truncated"), std::string::npos) << detail;
}

TEST(InspectBundle, ParsesEveryCertificate) {
  const auto& m = material();
  auto bundle = inspect_bundle(m.ca.cert_chain_pem + m.other_ca.cert_chain_pem);
  ASSERT_EQ(bundle.size(), 2u);
  EXPECT_EQ(bundle[0].subject, "CN=test CA");
  EXPECT_EQ(bundle[1].subject, "CN=other CA");
  EXPECT_TRUE(bundle[0].is_ca && bundle[1].is_ca);
  EXPECT_TRUE(inspect_bundle("not a bundle").empty());
}

TEST(ValidateIdentity, AcceptsAGoodIdentity) {
  const auto& m = material();
  EXPECT_EQ(validate(m.leaf, m.ca.cert_chain_pem, "app.sample-namespace"), "ok");
  EXPECT_EQ(validate(m.leaf, {}, {}), "ok");
  EXPECT_EQ(validate(m.leaf, m.ca.cert_chain_pem, "x.apps.test"), "ok");
}

TEST(ValidateIdentity, MismatchedKey) {
  const auto& m = material();
  Identity id{m.leaf.cert_chain_pem, m.other_leaf.key_pem};
  EXPECT_EQ(validate(id, m.ca.cert_chain_pem, {}), "private key does not match the certificate");
}

TEST(ValidateIdentity, ExpiredAndNotYetValid) {
  const auto& m = material();
  EXPECT_NE(validate(m.leaf, {}, {}, now_seconds() + 2 * 86400).find("certificate has expired"),
            std::string::npos);
  EXPECT_NE(validate(m.leaf, {}, {}, now_seconds() - 3600).find("not yet valid"),
            std::string::npos);
}

TEST(ValidateIdentity, WrongSan) {
  const auto& m = material();
  EXPECT_NE(validate(m.leaf, {}, "orders.sample-namespace")
                .find("SAN mismatch: wanted orders.sample-namespace"),
            std::string::npos);
  // RFC 6125: the wildcard covers exactly one label.
  EXPECT_NE(validate(m.leaf, {}, "a.b.apps.test").find("SAN mismatch"), std::string::npos);
  EXPECT_NE(validate(m.leaf, {}, "apps.test").find("SAN mismatch"), std::string::npos);
}

TEST(ValidateIdentity, ChainThatDoesNotReachTheTrust) {
  const auto& m = material();
  EXPECT_NE(validate(m.leaf, m.other_ca.cert_chain_pem, {})
                .find("unable to get local issuer certificate"),
            std::string::npos);
}

TEST(ValidateIdentity, GarbageEncryptedTruncatedAndEmptyInput) {
  const auto& m = material();
  EXPECT_NE(validate({"garbage", m.leaf.key_pem}, {}, {}).find("no PEM certificate"),
            std::string::npos);
  EXPECT_NE(validate({"", m.leaf.key_pem}, {}, {}).find("empty"), std::string::npos);
  EXPECT_NE(validate({m.leaf.cert_chain_pem, ""}, {}, {}).find("key: private key PEM is empty"),
            std::string::npos);
  EXPECT_NE(validate({m.leaf.cert_chain_pem, "garbage"}, {}, {}).find("no PEM private key"),
            std::string::npos);
  std::string cert = m.leaf.cert_chain_pem;
  EXPECT_NE(validate({cert.substr(0, cert.size() - 40), m.leaf.key_pem}, {}, {}).find("truncated"),
            std::string::npos);
  std::string key = m.leaf.key_pem;
  EXPECT_NE(validate({cert, key.substr(0, key.size() - 30)}, {}, {}).find("key:"),
            std::string::npos);
  // A certificate whose base64 is damaged in the middle.
  std::string damaged = cert;
  damaged[damaged.size() / 2] = '!';
  EXPECT_NE(validate({damaged, m.leaf.key_pem}, {}, {}), "ok");
}

TEST(ValidateIdentity, EncryptedKeyIsRefused) {
  const auto& m = material();
  // Traditional OpenSSL encryption and PKCS#8 encryption are both refused by name.
  std::string legacy =
      "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
      "DEK-Info: AES-256-CBC,00000000000000000000000000000000\n\nAAAA\n"
      "-----END EC PRIVATE KEY-----\n";
  EXPECT_NE(validate({m.leaf.cert_chain_pem, legacy}, {}, {}).find("encrypted"), std::string::npos);
  if (!testing::have_openssl()) GTEST_SKIP() << "openssl command not available";
  std::string dir = testing::make_temp_dir(), out;
  testing::write_file(dir, "key.pem", m.leaf.key_pem);
  ASSERT_EQ(testing::run_command("openssl pkcs8 -topk8 -v2 aes256 -passout pass:secret -in " + dir +
                                     "/key.pem -out " + dir + "/enc.pem",
                                 &out),
            0)
      << out;
  std::string encrypted;
  testing::run_command("cat " + dir + "/enc.pem", &encrypted);
  EXPECT_NE(validate({m.leaf.cert_chain_pem, encrypted}, {}, {}).find("encrypted"),
            std::string::npos)
      << encrypted;
  testing::run_command("rm -rf " + dir, &out);
}

TEST(ValidateIdentity, AcceptsAPkcs8KeyFromOpenssl) {
  if (!testing::have_openssl()) GTEST_SKIP() << "openssl command not available";
  const auto& m = material();
  std::string dir = testing::make_temp_dir(), out;
  testing::write_file(dir, "key.pem", m.leaf.key_pem);
  ASSERT_EQ(testing::run_command("openssl pkey -in " + dir + "/key.pem", &out), 0) << out;
  EXPECT_NE(out.find("BEGIN PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(validate({m.leaf.cert_chain_pem, out}, m.ca.cert_chain_pem, {}), "ok");
  testing::run_command("rm -rf " + dir, &out);
}

}  // namespace
}  // namespace ringside::tls
