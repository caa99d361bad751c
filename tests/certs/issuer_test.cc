// The private CA: checked by round trips through inspect/validate and by the openssl
// command line tool (x509 -text, verify, req -verify).
#include <gtest/gtest.h>

#include "../tls/tls_test_util.h"
#include "ringside/certs.h"

namespace ringside::certs {
namespace {

using tls::Identity;
using tls::KeyType;
using tls::testing::now_seconds;
using tls::testing::run_command;

class IssuerTest : public ::testing::TestWithParam<KeyType> {};

TEST_P(IssuerTest, CaAndLeafRoundTrip) {
  const KeyType type = GetParam();
  std::string detail;
  CaOptions ca_options;
  ca_options.key_type = type;
  ca_options.common_name = "Sample Namespace CA";
  auto ca = create_ca(ca_options, &detail);
  ASSERT_TRUE(ca.ok()) << detail;
  EXPECT_EQ(private_key_type(ca->key_pem), type);

  auto ca_info = tls::inspect_certificate(ca->cert_chain_pem, &detail);
  ASSERT_TRUE(ca_info.ok()) << detail;
  EXPECT_TRUE(ca_info->is_ca);
  EXPECT_EQ(ca_info->subject, "CN=Sample Namespace CA");
  EXPECT_EQ(ca_info->issuer, ca_info->subject);
  EXPECT_EQ(ca_info->key_type, type);
  EXPECT_NEAR(ca_info->not_after - ca_info->not_before, 3650 * 86400 + 300, 5);

  LeafOptions leaf_options;
  leaf_options.dns_sans = {"orders.sample-namespace", "orders"};
  leaf_options.key_type = type;
  leaf_options.lifetime = std::chrono::hours(24 * 7);
  auto leaf = issue_leaf(ca.value(), leaf_options, &detail);
  ASSERT_TRUE(leaf.ok()) << detail;
  auto info = tls::validate_identity(leaf.value(), ca->cert_chain_pem, "orders.sample-namespace",
                                     now_seconds(), &detail);
  ASSERT_TRUE(info.ok()) << detail;
  EXPECT_FALSE(info->is_ca);
  EXPECT_EQ(info->issuer, "CN=Sample Namespace CA");
  EXPECT_EQ(info->subject, "CN=orders.sample-namespace");
  EXPECT_EQ(info->dns_sans, leaf_options.dns_sans);
  EXPECT_EQ(info->key_type, type);
  EXPECT_EQ(info->serial_hex.size(), 32u);
  // Backdated five minutes for clock skew; 7 days from now.
  EXPECT_NEAR(info->not_before, now_seconds() - 300, 5);
  EXPECT_NEAR(info->not_after, now_seconds() + 7 * 86400, 5);
  // The chain is the leaf alone.
  EXPECT_EQ(tls::inspect_bundle(leaf->cert_chain_pem).size(), 1u);

  // Two leaves never share a serial.
  auto second = issue_leaf(ca.value(), leaf_options, &detail);
  ASSERT_TRUE(second.ok());
  EXPECT_NE(tls::inspect_certificate(second->cert_chain_pem, &detail)->serial_hex,
            info->serial_hex);
}

TEST_P(IssuerTest, OpensslAgreesWithTheExtensions) {
  if (!tls::testing::have_openssl()) GTEST_SKIP() << "openssl command not available";
  const KeyType type = GetParam();
  std::string detail, out;
  CaOptions ca_options;
  ca_options.key_type = type;
  auto ca = create_ca(ca_options, &detail);
  ASSERT_TRUE(ca.ok()) << detail;
  LeafOptions leaf_options;
  leaf_options.dns_sans = {"orders.sample-namespace"};
  leaf_options.key_type = type;
  auto leaf = issue_leaf(ca.value(), leaf_options, &detail);
  ASSERT_TRUE(leaf.ok()) << detail;
  std::string dir = tls::testing::make_temp_dir();
  std::string ca_path = tls::testing::write_file(dir, "ca.pem", ca->cert_chain_pem);
  std::string leaf_path = tls::testing::write_file(dir, "leaf.pem", leaf->cert_chain_pem);
  std::string key_path = tls::testing::write_file(dir, "leaf.key", leaf->key_pem);

  ASSERT_EQ(run_command("openssl x509 -noout -text -in " + ca_path, &out), 0) << out;
  EXPECT_NE(out.find("X509v3 Basic Constraints: critical\n                CA:TRUE"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("X509v3 Subject Key Identifier"), std::string::npos) << out;

  ASSERT_EQ(run_command("openssl x509 -noout -text -in " + leaf_path, &out), 0) << out;
  EXPECT_NE(out.find("DNS:orders.sample-namespace"), std::string::npos) << out;
  EXPECT_NE(out.find("TLS Web Server Authentication, TLS Web Client Authentication"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find(type == KeyType::kRsa2048 ? "Digital Signature, Key Encipherment"
                                               : "Digital Signature\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("X509v3 Authority Key Identifier"), std::string::npos) << out;
  EXPECT_EQ(out.find("CA:TRUE"), std::string::npos) << out;

  ASSERT_EQ(run_command("openssl verify -CAfile " + ca_path + " " + leaf_path, &out), 0) << out;
  EXPECT_NE(out.find(": OK"), std::string::npos) << out;
  // The key belongs to the certificate.
  std::string cert_pub, key_pub;
  ASSERT_EQ(run_command("openssl x509 -noout -pubkey -in " + leaf_path, &cert_pub), 0);
  ASSERT_EQ(run_command("openssl pkey -pubout -in " + key_path, &key_pub), 0);
  EXPECT_EQ(cert_pub, key_pub);

  auto csr = create_csr(leaf->key_pem, {"orders.sample-namespace", "orders"}, &detail);
  ASSERT_TRUE(csr.ok()) << detail;
  std::string csr_path = tls::testing::write_file(dir, "req.pem", csr.value());
  ASSERT_EQ(run_command("openssl req -noout -verify -text -in " + csr_path, &out), 0) << out;
  EXPECT_NE(out.find("CN = orders.sample-namespace"), std::string::npos) << out;
  EXPECT_NE(out.find("DNS:orders.sample-namespace, DNS:orders"), std::string::npos) << out;
  run_command("rm -rf " + dir, &out);
}

INSTANTIATE_TEST_SUITE_P(KeyTypes, IssuerTest,
                         ::testing::Values(KeyType::kEcdsaP256, KeyType::kRsa2048),
                         [](const ::testing::TestParamInfo<KeyType>& param_info) {
                           return param_info.param == KeyType::kRsa2048 ? "Rsa2048" : "EcdsaP256";
                         });

TEST(Issuer, LeafWithAGivenKeyAndAPastWindow) {
  std::string detail;
  auto ca = create_ca({}, &detail);
  ASSERT_TRUE(ca.ok()) << detail;
  auto key = generate_key(KeyType::kEcdsaP256, &detail);
  ASSERT_TRUE(key.ok()) << detail;
  LeafOptions options;
  options.dns_sans = {"svc.test"};
  options.key_pem = key.value();
  options.not_before = now_seconds() - 10 * 86400;
  options.lifetime = std::chrono::hours(24);
  auto leaf = issue_leaf(ca.value(), options, &detail);
  ASSERT_TRUE(leaf.ok()) << detail;
  EXPECT_EQ(leaf->key_pem, key.value());
  auto info = tls::inspect_certificate(leaf->cert_chain_pem, &detail);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->not_before, options.not_before);
  EXPECT_EQ(info->not_after, options.not_before + 86400);
  EXPECT_FALSE(
      tls::validate_identity(leaf.value(), ca->cert_chain_pem, "svc.test", now_seconds(), &detail)
          .ok());
  EXPECT_NE(detail.find("expired"), std::string::npos) << detail;
}

TEST(Issuer, ValidityBeyond2049UsesGeneralizedTime) {
  std::string detail;
  CaOptions options;
  options.lifetime = std::chrono::hours(24 * 365 * 40);
  auto ca = create_ca(options, &detail);
  ASSERT_TRUE(ca.ok()) << detail;
  auto info = tls::inspect_certificate(ca->cert_chain_pem, &detail);
  ASSERT_TRUE(info.ok()) << detail;
  EXPECT_NEAR(info->not_after, now_seconds() + 40LL * 365 * 86400, 5);
}

TEST(Issuer, RejectsBadRequests) {
  std::string detail;
  EXPECT_FALSE(generate_key(KeyType::kOther, &detail).ok());
  EXPECT_NE(detail.find("unsupported key type"), std::string::npos);
  auto ca = create_ca({}, &detail);
  ASSERT_TRUE(ca.ok());
  LeafOptions options;
  EXPECT_FALSE(issue_leaf(ca.value(), options, &detail).ok());
  EXPECT_NE(detail.find("at least one DNS SAN"), std::string::npos);
  options.dns_sans = {"bad name with spaces"};
  EXPECT_FALSE(issue_leaf(ca.value(), options, &detail).ok());
  EXPECT_NE(detail.find("not a DNS name"), std::string::npos);
  options.dns_sans = {"ok.test"};
  options.lifetime = std::chrono::seconds(0);
  EXPECT_FALSE(issue_leaf(ca.value(), options, &detail).ok());
  EXPECT_NE(detail.find("lifetime"), std::string::npos);
  // A leaf cannot act as a CA.
  options.lifetime = std::chrono::hours(1);
  auto leaf = issue_leaf(ca.value(), options, &detail);
  ASSERT_TRUE(leaf.ok());
  EXPECT_FALSE(issue_leaf(leaf.value(), options, &detail).ok());
  EXPECT_NE(detail.find("not a CA"), std::string::npos);
  Identity broken{ca->cert_chain_pem, "garbage"};
  EXPECT_FALSE(issue_leaf(broken, options, &detail).ok());
  EXPECT_NE(detail.find("CA key"), std::string::npos);
  EXPECT_FALSE(create_csr("garbage", {"ok.test"}, &detail).ok());
  EXPECT_EQ(private_key_type("garbage"), KeyType::kOther);
}

}  // namespace
}  // namespace ringside::certs
