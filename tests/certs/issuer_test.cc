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

TEST(Issuer, SpiffeIdGoesInAsAUriSanAfterTheDnsSan) {
  std::string detail;
  auto ca = create_ca({}, &detail);
  ASSERT_TRUE(ca.ok()) << detail;
  LeafOptions options;
  options.dns_sans = {"app.ns"};
  options.uri_sans = {"spiffe://example.org/ns/prod/sa/app"};
  auto leaf = issue_leaf(ca.value(), options, &detail);
  ASSERT_TRUE(leaf.ok()) << detail;
  auto info = tls::inspect_certificate(leaf->cert_chain_pem, &detail);
  ASSERT_TRUE(info.ok()) << detail;
  EXPECT_EQ(info->dns_sans, std::vector<std::string>{"app.ns"});
  EXPECT_EQ(info->uri_sans, std::vector<std::string>{"spiffe://example.org/ns/prod/sa/app"});
  for (const char* bad : {"https://example.org/x", "spiffe://Example.org/x", "spiffe://td/*"}) {
    options.uri_sans = {bad};
    EXPECT_FALSE(issue_leaf(ca.value(), options, &detail).ok()) << bad;
    EXPECT_NE(detail.find("not a SPIFFE ID"), std::string::npos) << detail;
  }
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

// root -> intermediate -> leaf: the intermediate is a CA with pathLenConstraint 0, its
// file holds the chain, leaves are served with the intermediate (not the root), and a
// peer trusting only the root, or only the intermediate, verifies them.
TEST_P(IssuerTest, IntermediateChainVerifiesAgainstTheRoot) {
  const KeyType type = GetParam();
  std::string detail, out;
  CaOptions root_options;
  root_options.common_name = "Root";
  auto root = create_ca(root_options, &detail);
  ASSERT_TRUE(root.ok()) << detail;
  CaOptions inter_options;
  inter_options.common_name = "Intermediate";
  inter_options.key_type = type;
  inter_options.lifetime = std::chrono::hours(24 * 365);
  auto inter = create_intermediate(root.value(), inter_options, &detail);
  ASSERT_TRUE(inter.ok()) << detail;
  auto inter_certs = tls::inspect_bundle(inter->cert_chain_pem);
  ASSERT_EQ(inter_certs.size(), 2u);
  EXPECT_EQ(inter_certs[0].subject, "CN=Intermediate");
  EXPECT_EQ(inter_certs[0].issuer, "CN=Root");
  EXPECT_TRUE(inter_certs[0].is_ca);
  EXPECT_EQ(inter_certs[0].path_len, 0);
  EXPECT_EQ(inter_certs[1].subject, "CN=Root");
  EXPECT_EQ(private_key_type(inter->key_pem), type);

  LeafOptions leaf_options;
  leaf_options.dns_sans = {"orders.sample-namespace"};
  auto leaf = issue_leaf(inter.value(), leaf_options, &detail);
  ASSERT_TRUE(leaf.ok()) << detail;
  auto served = tls::inspect_bundle(leaf->cert_chain_pem);
  ASSERT_EQ(served.size(), 2u) << "the leaf and the intermediate, not the root";
  EXPECT_EQ(served[0].issuer, "CN=Intermediate");
  EXPECT_EQ(served[1].subject, "CN=Intermediate");
  EXPECT_TRUE(tls::validate_identity(leaf.value(), root->cert_chain_pem, "orders.sample-namespace",
                                     now_seconds(), &detail)
                  .ok())
      << detail;
  // Trusting the intermediate alone (it is then the anchor), or the chain file.
  std::string inter_only =
      inter->cert_chain_pem.substr(0, inter->cert_chain_pem.find("-----END CERTIFICATE-----") + 26);
  EXPECT_TRUE(tls::validate_identity(leaf.value(), inter_only, "orders.sample-namespace",
                                     now_seconds(), &detail)
                  .ok())
      << detail;
  EXPECT_TRUE(tls::validate_identity(leaf.value(), inter->cert_chain_pem, "orders.sample-namespace",
                                     now_seconds(), &detail)
                  .ok())
      << detail;
  // Another root does not.
  auto other = create_ca({}, &detail);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(tls::validate_identity(leaf.value(), other->cert_chain_pem,
                                      "orders.sample-namespace", now_seconds(), &detail)
                   .ok());

  if (!tls::testing::have_openssl()) return;
  std::string dir = tls::testing::make_temp_dir();
  std::string root_path = tls::testing::write_file(dir, "root.pem", root->cert_chain_pem);
  std::string inter_path = tls::testing::write_file(dir, "inter.pem", inter->cert_chain_pem);
  std::string leaf_path = tls::testing::write_file(dir, "leaf.pem", leaf->cert_chain_pem);
  ASSERT_EQ(run_command("openssl x509 -noout -text -in " + inter_path, &out), 0) << out;
  EXPECT_NE(out.find("X509v3 Basic Constraints: critical\n                CA:TRUE, pathlen:0"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("X509v3 Authority Key Identifier"), std::string::npos) << out;
  ASSERT_EQ(run_command("openssl verify -CAfile " + root_path + " -untrusted " + leaf_path + " " +
                            leaf_path,
                        &out),
            0)
      << out;
  run_command("rm -rf " + dir, &out);
}

TEST(Issuer, IntermediatesRefuseWhatAPeerWouldRefuse) {
  std::string detail;
  CaOptions root_options;
  root_options.common_name = "Root";
  auto root = create_ca(root_options, &detail);
  ASSERT_TRUE(root.ok()) << detail;
  CaOptions options;
  options.common_name = "Intermediate";
  options.lifetime = std::chrono::hours(24 * 365);
  auto inter = create_intermediate(root.value(), options, &detail);
  ASSERT_TRUE(inter.ok()) << detail;
  // pathLenConstraint 0: no CA below it.
  EXPECT_FALSE(create_intermediate(inter.value(), options, &detail).ok());
  EXPECT_NE(detail.find("pathLenConstraint 0"), std::string::npos) << detail;
  // Not longer than the parent.
  options.lifetime = std::chrono::hours(24 * 3651);
  EXPECT_FALSE(create_intermediate(root.value(), options, &detail).ok());
  EXPECT_NE(detail.find("outlive its parent"), std::string::npos) << detail;
  // A leaf is no parent.
  LeafOptions leaf_options;
  leaf_options.dns_sans = {"svc.test"};
  auto leaf = issue_leaf(root.value(), leaf_options, &detail);
  ASSERT_TRUE(leaf.ok());
  options.lifetime = std::chrono::hours(1);
  EXPECT_FALSE(create_intermediate(leaf.value(), options, &detail).ok());
  EXPECT_NE(detail.find("not a CA"), std::string::npos) << detail;

  // An expired intermediate issues nothing.
  CaOptions past;
  past.not_before = now_seconds() - 2 * 86400;
  past.lifetime = std::chrono::hours(24);
  auto expired = create_intermediate(root.value(), past, &detail);
  ASSERT_TRUE(expired.ok()) << detail;
  EXPECT_FALSE(issue_leaf(expired.value(), leaf_options, &detail).ok());
  EXPECT_NE(detail.find("outside its validity"), std::string::npos) << detail;
  // The root first.
  size_t split = inter->cert_chain_pem.find("-----END CERTIFICATE-----") + 26;
  Identity reversed{inter->cert_chain_pem.substr(split) + inter->cert_chain_pem.substr(0, split),
                    inter->key_pem};
  EXPECT_FALSE(issue_leaf(reversed, leaf_options, &detail).ok());
  EXPECT_NE(detail.find("does not link"), std::string::npos) << detail;
  // The key of another CA of the chain.
  Identity wrong_key{inter->cert_chain_pem, root->key_pem};
  EXPECT_FALSE(issue_leaf(wrong_key, leaf_options, &detail).ok());
  EXPECT_NE(detail.find("does not match"), std::string::npos) << detail;
  // A parent that did not issue the intermediate.
  CaOptions other_options;
  other_options.common_name = "Another root";
  auto other = create_ca(other_options, &detail);
  ASSERT_TRUE(other.ok());
  Identity unlinked{inter->cert_chain_pem.substr(0, split) + other->cert_chain_pem, inter->key_pem};
  EXPECT_FALSE(issue_leaf(unlinked, leaf_options, &detail).ok());
  EXPECT_NE(detail.find("does not link"), std::string::npos) << detail;
}

}  // namespace
}  // namespace ringside::certs
