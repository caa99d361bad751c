// The ACME pieces (src/certs/acme.h): base64url, the account key's JWK and thumbprint, an
// ES256 JWS that verifies with the JWK's public key, key authorizations.
#include "certs/acme.h"

#include <gtest/gtest.h>

// clang-format off
#include <wolfssl/options.h>
// clang-format on
#include <wolfssl/wolfcrypt/ecc.h>

#include <string>

#include "ringside/certs.h"
#include "ringside/json.h"

namespace ringside::certs {
namespace {

std::string hex(std::string_view bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string unbase64url(std::string_view text) {
  std::string out;
  EXPECT_TRUE(base64_decode(text, &out)) << text;
  return out;
}

TEST(AcmeTest, Base64Url) {
  EXPECT_EQ(base64url(""), "");
  EXPECT_EQ(base64url("f"), "Zg");
  EXPECT_EQ(base64url("fo"), "Zm8");
  EXPECT_EQ(base64url("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64url("\xfb\xff"), "-_8");
  EXPECT_EQ(unbase64url("-_8"), "\xfb\xff");
  EXPECT_EQ(unbase64url("Zm9vYmE="), "fooba");
  std::string out;
  EXPECT_FALSE(base64_decode("Zm9v!", &out));
  EXPECT_FALSE(base64_decode("Zg=v", &out));
}

TEST(AcmeTest, KeyAuthorizationIsTokenDotThumbprint) {
  EXPECT_EQ(acme_key_authorization("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA",
                                   "nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ"),
            "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA."
            "nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ");
}

TEST(AcmeTest, JwkIsCanonicalAndTheJwsVerifies) {
  std::string detail;
  auto pem = generate_key(tls::KeyType::kEcdsaP256, &detail);
  ASSERT_TRUE(pem.ok()) << detail;
  auto key = AcmeAccountKey::from_pem(*pem, &detail);
  ASSERT_TRUE(key.ok()) << detail;

  // RFC 7638: the required members in lexicographic order, no whitespace.
  auto jwk = parse_json(key->jwk(), &detail);
  ASSERT_TRUE(jwk.ok()) << detail;
  EXPECT_EQ(jwk->keys(), (std::vector<std::string>{"crv", "kty", "x", "y"}));
  EXPECT_EQ(key->jwk().find(' '), std::string::npos);
  EXPECT_EQ(jwk->string_at("crv"), "P-256");
  EXPECT_EQ(jwk->string_at("kty"), "EC");
  EXPECT_EQ(jwk->string_at("x").size(), 43u);  // 32 bytes, unpadded
  EXPECT_EQ(key->thumbprint(), base64url(sha256_bytes(key->jwk())));

  auto jws = key->sign("https://ca/new-order", "nonce-1", "https://ca/acct/7",
                       R"({"identifiers":[]})", &detail);
  ASSERT_TRUE(jws.ok()) << detail;
  auto parsed = parse_json(*jws, &detail);
  ASSERT_TRUE(parsed.ok()) << detail;
  auto header = parse_json(unbase64url(parsed->string_at("protected")), &detail);
  ASSERT_TRUE(header.ok()) << detail;
  EXPECT_EQ(header->string_at("alg"), "ES256");
  EXPECT_EQ(header->string_at("kid"), "https://ca/acct/7");
  EXPECT_EQ(header->find("jwk"), nullptr);
  EXPECT_EQ(header->string_at("nonce"), "nonce-1");
  EXPECT_EQ(header->string_at("url"), "https://ca/new-order");
  EXPECT_EQ(unbase64url(parsed->string_at("payload")), R"({"identifiers":[]})");

  // The signature is r || s and verifies with the JWK's public key.
  std::string signature = unbase64url(parsed->string_at("signature"));
  ASSERT_EQ(signature.size(), 64u);
  ecc_key pub;
  ASSERT_EQ(wc_ecc_init(&pub), 0);
  ASSERT_EQ(wc_ecc_import_raw(&pub, hex(unbase64url(jwk->string_at("x"))).c_str(),
                              hex(unbase64url(jwk->string_at("y"))).c_str(), nullptr, "SECP256R1"),
            0);
  byte der[80];
  word32 der_len = sizeof(der);
  ASSERT_EQ(
      wc_ecc_rs_raw_to_sig(reinterpret_cast<const byte*>(signature.data()), 32,
                           reinterpret_cast<const byte*>(signature.data()) + 32, 32, der, &der_len),
      0);
  std::string input =
      std::string(parsed->string_at("protected")) + "." + std::string(parsed->string_at("payload"));
  std::string digest = sha256_bytes(input);
  int verified = 0;
  ASSERT_EQ(wc_ecc_verify_hash(der, der_len, reinterpret_cast<const byte*>(digest.data()), 32,
                               &verified, &pub),
            0);
  EXPECT_EQ(verified, 1);
  // A tampered payload does not verify.
  digest = sha256_bytes(input + "x");
  ASSERT_EQ(wc_ecc_verify_hash(der, der_len, reinterpret_cast<const byte*>(digest.data()), 32,
                               &verified, &pub),
            0);
  EXPECT_EQ(verified, 0);
  wc_ecc_free(&pub);

  // newAccount: the jwk instead of a kid; POST-as-GET: an empty payload.
  auto first = key->sign("https://ca/new-acct", "n", "", "", &detail);
  ASSERT_TRUE(first.ok()) << detail;
  auto first_header =
      parse_json(unbase64url(parse_json(*first, &detail)->string_at("protected")), &detail);
  ASSERT_TRUE(first_header.ok()) << detail;
  ASSERT_NE(first_header->find("jwk"), nullptr);
  EXPECT_EQ(first_header->find("jwk")->string_at("x"), jwk->string_at("x"));
  EXPECT_EQ(first_header->find("kid"), nullptr);
  EXPECT_EQ(parse_json(*first, &detail)->string_at("payload"), "");
}

TEST(AcmeTest, RefusesAnAccountKeyThatIsNotP256) {
  std::string detail;
  auto pem = generate_key(tls::KeyType::kRsa2048, &detail);
  ASSERT_TRUE(pem.ok()) << detail;
  EXPECT_FALSE(AcmeAccountKey::from_pem(*pem, &detail).ok());
  EXPECT_NE(detail.find("P-256"), std::string::npos) << detail;
  EXPECT_FALSE(AcmeAccountKey::from_pem("garbage", &detail).ok());
}

TEST(AcmeTest, TlsAlpnCertificateCarriesTheCriticalAcmeIdentifier) {
  std::string detail, der;
  auto pem = generate_key(tls::KeyType::kEcdsaP256, &detail);
  ASSERT_TRUE(pem.ok()) << detail;
  auto key = AcmeAccountKey::from_pem(*pem, &detail);
  ASSERT_TRUE(key.ok()) << detail;
  const std::string key_authorization = "token.thumbprint";
  auto cert = acme_tls_alpn_certificate(*key, "app.example", key_authorization, &detail);
  ASSERT_TRUE(cert.ok()) << detail;
  ASSERT_TRUE(pem_body_der(*cert, &der));
  // RFC 8737 3: id-pe-acmeIdentifier, critical, OCTET STRING (SHA-256 of the key
  // authorization) inside the extension's OCTET STRING.
  const std::string extension = std::string("\x06\x08\x2b\x06\x01\x05\x05\x07\x01\x1f", 10) +
                                std::string("\x01\x01\xff\x04\x22\x04\x20", 7) +
                                sha256_bytes(key_authorization);
  EXPECT_NE(der.find(extension), std::string::npos);
  // The dNSName SAN, and the key's own public key.
  EXPECT_NE(der.find(std::string("\x82\x0b") + "app.example"), std::string::npos);
  EXPECT_NE(der.find(key->public_key_der()), std::string::npos);
  // wolfSSL's parser refuses the unknown critical extension: the TLS layer swaps the
  // certificate into a session rather than building a context from it.
  EXPECT_FALSE(tls::inspect_certificate(*cert, &detail).ok());
}

TEST(AcmeTest, PemBodyDer) {
  std::string detail, der;
  auto key = generate_key(tls::KeyType::kEcdsaP256, &detail);
  auto csr = create_csr(*key, {"app.example"}, &detail);
  ASSERT_TRUE(csr.ok()) << detail;
  ASSERT_TRUE(pem_body_der(*csr, &der));
  EXPECT_EQ(static_cast<unsigned char>(der[0]), 0x30);  // a DER SEQUENCE
  EXPECT_FALSE(pem_body_der("no pem here", &der));
}

}  // namespace
}  // namespace ringside::certs
