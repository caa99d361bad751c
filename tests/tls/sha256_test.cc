// SHA-256 in the linked wolfSSL: tools/wolfssl-sha256-shani.patch adds a transform with
// the x86 SHA extensions, picked at run time. These tests hold whichever transform this
// CPU gets to FIPS 180-4's vectors and to a plain reference implementation, over every
// message length up to a few blocks and arbitrary update splits (single-block and
// multi-block paths both run). Where the patched transform cannot run (another CPU, or a
// wolfSSL not built by tools/build-wolfssl.sh), ShaNiTransform says so as a skip.
#include <gtest/gtest.h>

// clang-format off
#include <wolfssl/options.h>
// clang-format on
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/sha256.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <array>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace {

using Digest = std::array<uint8_t, WC_SHA256_DIGEST_SIZE>;

std::string hex(const Digest& d) {
  std::string out;
  char buf[3];
  for (uint8_t b : d) {
    std::snprintf(buf, sizeof(buf), "%02x", b);
    out += buf;
  }
  return out;
}

// wolfSSL, fed in the given pieces.
Digest wolf_sha256(const uint8_t* data, size_t len, const std::vector<size_t>& splits = {}) {
  wc_Sha256 sha;
  EXPECT_EQ(wc_InitSha256(&sha), 0);
  size_t off = 0;
  for (size_t split : splits) {
    size_t n = std::min(split, len - off);
    EXPECT_EQ(wc_Sha256Update(&sha, data + off, static_cast<word32>(n)), 0);
    off += n;
  }
  EXPECT_EQ(wc_Sha256Update(&sha, data + off, static_cast<word32>(len - off)), 0);
  Digest out{};
  EXPECT_EQ(wc_Sha256Final(&sha, out.data()), 0);
  wc_Sha256Free(&sha);
  return out;
}

Digest wolf_sha256(const std::string& s) {
  return wolf_sha256(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// FIPS 180-4, written for clarity only.
Digest reference_sha256(const uint8_t* data, size_t len) {
  static const uint32_t k[64] = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
      0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
      0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
      0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
      0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
      0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
      0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
      0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
      0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
      0xc67178f2};
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::vector<uint8_t> msg(data, data + len);
  msg.push_back(0x80);
  while (msg.size() % 64 != 56) msg.push_back(0);
  uint64_t bits = static_cast<uint64_t>(len) * 8;
  for (int i = 7; i >= 0; --i) msg.push_back(static_cast<uint8_t>(bits >> (8 * i)));
  auto rotr = [](uint32_t x, int n) { return (x >> n) | (x << (32 - n)); };
  for (size_t block = 0; block < msg.size(); block += 64) {
    uint32_t w[64];
    for (int t = 0; t < 16; ++t) {
      const uint8_t* p = &msg[block + 4 * t];
      w[t] = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
    }
    for (int t = 16; t < 64; ++t) {
      uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
      uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int t = 0; t < 64; ++t) {
      uint32_t t1 =
          hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[t] + w[t];
      uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
  }
  Digest out{};
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j < 4; ++j) out[4 * i + j] = static_cast<uint8_t>(h[i] >> (24 - 8 * j));
  }
  return out;
}

void expect_fips180_vectors() {
  EXPECT_EQ(hex(wolf_sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex(wolf_sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(wolf_sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string million(1000000, 'a');
  EXPECT_EQ(hex(wolf_sha256(million)),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, Fips180Vectors) { expect_fips180_vectors(); }

TEST(Sha256, MatchesTheReferenceForEveryLengthAndSplit) {
  std::mt19937 rng(180);
  std::vector<uint8_t> data(1024);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  int compared = 0;
  for (size_t len = 0; len <= 600; ++len) {
    Digest want = reference_sha256(data.data(), len);
    ASSERT_EQ(hex(wolf_sha256(data.data(), len)), hex(want)) << "length " << len;
    // Three pieces at random points: partial buffers, then whole blocks, then a tail.
    std::vector<size_t> splits = {rng() % (len + 1), rng() % (len + 1)};
    ASSERT_EQ(hex(wolf_sha256(data.data(), len, splits)), hex(want)) << "length " << len;
    ++compared;
  }
  EXPECT_EQ(compared, 601);
  Digest want = reference_sha256(data.data(), data.size());
  EXPECT_EQ(hex(wolf_sha256(data.data(), data.size(), {1, 63, 64, 65, 128})), hex(want));
}

// What the patch asks of the CPU before it picks its transform: SSSE3, SSE4.1, AVX (for
// the buffer layout wolfSSL's AVX transforms share) and the SHA extensions.
[[maybe_unused]] bool cpu_runs_the_sha_ni_transform() {
#if defined(__x86_64__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  if (!(c & bit_SSSE3) || !(c & bit_SSE4_1) || !(c & bit_AVX)) return false;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return (b & bit_SHA) != 0;
#else
  return false;
#endif
}

TEST(Sha256, ShaNiTransform) {
  // WOLFSSL_RINGSIDE_RELEASE_INPUT marks the wolfSSL of tools/build-wolfssl.sh, which
  // applies every tools/wolfssl-*.patch; the SHA-NI transform also needs the Intel
  // assembly (--enable-intelasm, which options.h shows as USE_INTEL_SPEEDUP).
#if !defined(WOLFSSL_RINGSIDE_RELEASE_INPUT) || !defined(WOLFSSL_X86_64_BUILD) || \
    !defined(USE_INTEL_SPEEDUP)
  GTEST_SKIP() << "this wolfSSL is not built by tools/build-wolfssl.sh with its Intel "
                  "assembly: it has no SHA-NI transform (tools/wolfssl-sha256-shani.patch) "
                  "to check; the other tests checked its own transform";
#else
  if (!cpu_runs_the_sha_ni_transform()) {
    GTEST_SKIP() << "this CPU lacks the SHA extensions (or SSSE3, SSE4.1, AVX): the SHA-NI "
                    "transform of tools/wolfssl-sha256-shani.patch never runs here; the other "
                    "tests checked wolfSSL's AVX transform";
  }
  // This CPU gets the SHA-NI transform, so the other tests checked it too.
  expect_fips180_vectors();
#endif
}

}  // namespace
