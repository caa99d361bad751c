// X25519 in the linked wolfSSL: tools/wolfssl-x25519-fixed-base.patch computes public
// keys with Ed25519's fixed-base table instead of the Montgomery ladder. These tests hold
// that path to the ladder (wc_curve25519_generic with the base point 9 still runs it) and
// to RFC 7748's vectors, and check that shared secrets agree.
#include <gtest/gtest.h>

// clang-format off
#include <wolfssl/options.h>
// clang-format on
#include <wolfssl/wolfcrypt/curve25519.h>
#include <wolfssl/wolfcrypt/random.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>

namespace {

#ifdef HAVE_CURVE25519

using Bytes = std::array<uint8_t, CURVE25519_KEYSIZE>;

Bytes from_hex(const std::string& hex) {
  Bytes out{};
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  }
  return out;
}

Bytes clamp(Bytes k) {
  k[0] &= 248;
  k[31] &= 127;
  k[31] |= 64;
  return k;
}

// The public key through wc_curve25519_make_pub (the fixed-base path when patched).
Bytes fixed_base(const Bytes& priv) {
  Bytes pub{};
  EXPECT_EQ(wc_curve25519_make_pub(CURVE25519_KEYSIZE, pub.data(), CURVE25519_KEYSIZE, priv.data()),
            0);
  return pub;
}

// The same through the Montgomery ladder with an explicit base point u = 9.
Bytes ladder(const Bytes& priv) {
  Bytes base{9};
  Bytes pub{};
  EXPECT_EQ(wc_curve25519_generic(CURVE25519_KEYSIZE, pub.data(), CURVE25519_KEYSIZE, priv.data(),
                                  CURVE25519_KEYSIZE, base.data()),
            0);
  return pub;
}

// RFC 7748 section 6.1 (also checked with `openssl pkey` / `openssl pkeyutl -derive`).
const char* kAlicePriv = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const char* kAlicePub = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const char* kBobPriv = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
const char* kBobPub = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const char* kShared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

TEST(X25519, PublicKeysMatchRfc7748) {
  EXPECT_EQ(fixed_base(clamp(from_hex(kAlicePriv))), from_hex(kAlicePub));
  EXPECT_EQ(fixed_base(clamp(from_hex(kBobPriv))), from_hex(kBobPub));
}

TEST(X25519, SharedSecretMatchesRfc7748) {
  curve25519_key alice, bob_public;
  ASSERT_EQ(wc_curve25519_init(&alice), 0);
  ASSERT_EQ(wc_curve25519_init(&bob_public), 0);
  Bytes alice_priv = clamp(from_hex(kAlicePriv));
  Bytes alice_pub = fixed_base(alice_priv);
  Bytes bob_pub = from_hex(kBobPub);
  ASSERT_EQ(
      wc_curve25519_import_private_raw_ex(alice_priv.data(), CURVE25519_KEYSIZE, alice_pub.data(),
                                          CURVE25519_KEYSIZE, &alice, EC25519_LITTLE_ENDIAN),
      0);
  ASSERT_EQ(wc_curve25519_import_public_ex(bob_pub.data(), CURVE25519_KEYSIZE, &bob_public,
                                           EC25519_LITTLE_ENDIAN),
            0);
  Bytes shared{};
  word32 len = shared.size();
  ASSERT_EQ(wc_curve25519_shared_secret_ex(&alice, &bob_public, shared.data(), &len,
                                           EC25519_LITTLE_ENDIAN),
            0);
  EXPECT_EQ(len, shared.size());
  EXPECT_EQ(shared, from_hex(kShared));
  wc_curve25519_free(&alice);
  wc_curve25519_free(&bob_public);
}

TEST(X25519, FixedBaseEqualsLadderForRandomAndEdgeScalars) {
  std::mt19937_64 rng(20261122);
  int checked = 0;
  for (int i = 0; i < 1000; ++i) {
    Bytes k;
    for (auto& b : k) b = static_cast<uint8_t>(rng());
    k = clamp(k);
    // A quarter without bit 254: make_pub accepts them (it only checks bits 0-2 and 255).
    if (i % 4 == 3) k[31] &= 63;
    ASSERT_EQ(fixed_base(k), ladder(k)) << "scalar #" << i;
    ++checked;
  }
  EXPECT_EQ(checked, 1000);
  Bytes zero{};
  EXPECT_EQ(fixed_base(zero), ladder(zero));
  EXPECT_EQ(fixed_base(zero), Bytes{});  // the identity maps to u = 0 on both paths
  Bytes eight{8};
  EXPECT_EQ(fixed_base(eight), ladder(eight));
  Bytes top{};
  top.fill(0xff);
  top = clamp(top);
  EXPECT_EQ(fixed_base(top), ladder(top));
}

TEST(X25519, GeneratedKeysAgreeOnTheSharedSecret) {
  WC_RNG rng;
  ASSERT_EQ(wc_InitRng(&rng), 0);
  for (int i = 0; i < 50; ++i) {
    curve25519_key a, b;
    ASSERT_EQ(wc_curve25519_init(&a), 0);
    ASSERT_EQ(wc_curve25519_init(&b), 0);
    ASSERT_EQ(wc_curve25519_make_key(&rng, CURVE25519_KEYSIZE, &a), 0);
    ASSERT_EQ(wc_curve25519_make_key(&rng, CURVE25519_KEYSIZE, &b), 0);
    Bytes a_priv{}, a_pub{};
    word32 priv_len = a_priv.size(), pub_len = a_pub.size();
    ASSERT_EQ(wc_curve25519_export_key_raw_ex(&a, a_priv.data(), &priv_len, a_pub.data(), &pub_len,
                                              EC25519_LITTLE_ENDIAN),
              0);
    EXPECT_EQ(a_pub, ladder(a_priv));
    Bytes ab{}, ba{};
    word32 ab_len = ab.size(), ba_len = ba.size();
    ASSERT_EQ(wc_curve25519_shared_secret(&a, &b, ab.data(), &ab_len), 0);
    ASSERT_EQ(wc_curve25519_shared_secret(&b, &a, ba.data(), &ba_len), 0);
    EXPECT_EQ(ab, ba);
    EXPECT_NE(ab, Bytes{});
    wc_curve25519_free(&a);
    wc_curve25519_free(&b);
  }
  wc_FreeRng(&rng);
}

#else

TEST(X25519, NotBuilt) { GTEST_SKIP() << "this wolfSSL has no Curve25519"; }

#endif

}  // namespace
