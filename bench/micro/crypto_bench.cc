// Crypto micro-benchmarks of the wolfSSL that ringside links: AEAD throughput on 16 KB
// records, signatures, TLS records through TlsSession, and the heap an idle established
// TLS session holds.
#include <benchmark/benchmark.h>
#include <malloc.h>

// clang-format off
#include <wolfssl/options.h>
// clang-format on
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <wolfssl/wolfcrypt/curve25519.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <memory>
#include <string>
#include <vector>

#include "ringside/buffer.h"
#include "ringside/certs.h"
#include "ringside/tls.h"

namespace {

using ringside::ChunkQueue;
using ringside::tls::ContextOptions;
using ringside::tls::Identity;
using ringside::tls::KeyType;
using ringside::tls::Role;
using ringside::tls::TlsContext;
using ringside::tls::TlsSession;
using ringside::tls::TlsStatus;

constexpr size_t kRecord = 16 * 1024;

void BM_AesGcmEncrypt(benchmark::State& state) {
  const int key_bits = static_cast<int>(state.range(0));
  std::vector<uint8_t> key(static_cast<size_t>(key_bits / 8), 0x42), iv(12, 1), in(kRecord, 7),
      out(kRecord);
  uint8_t tag[16], aad[13] = {};
  Aes aes;
  wc_AesInit(&aes, nullptr, INVALID_DEVID);
  wc_AesGcmSetKey(&aes, key.data(), static_cast<word32>(key.size()));
  for (auto _ : state) {
    iv[11]++;
    int ret = wc_AesGcmEncrypt(&aes, out.data(), in.data(), kRecord, iv.data(), 12, tag,
                               sizeof(tag), aad, sizeof(aad));
    benchmark::DoNotOptimize(ret);
    benchmark::DoNotOptimize(out.data());
  }
  wc_AesFree(&aes);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kRecord);
}
BENCHMARK(BM_AesGcmEncrypt)->Arg(128)->Arg(256);

void BM_AesGcmDecrypt(benchmark::State& state) {
  const int key_bits = static_cast<int>(state.range(0));
  std::vector<uint8_t> key(static_cast<size_t>(key_bits / 8), 0x42), iv(12, 1), in(kRecord, 7),
      sealed(kRecord), out(kRecord);
  uint8_t tag[16], aad[13] = {};
  Aes aes;
  wc_AesInit(&aes, nullptr, INVALID_DEVID);
  wc_AesGcmSetKey(&aes, key.data(), static_cast<word32>(key.size()));
  wc_AesGcmEncrypt(&aes, sealed.data(), in.data(), kRecord, iv.data(), 12, tag, sizeof(tag), aad,
                   sizeof(aad));
  for (auto _ : state) {
    int ret = wc_AesGcmDecrypt(&aes, out.data(), sealed.data(), kRecord, iv.data(), 12, tag,
                               sizeof(tag), aad, sizeof(aad));
    if (ret != 0) state.SkipWithError("AES-GCM decrypt failed");
    benchmark::DoNotOptimize(out.data());
  }
  wc_AesFree(&aes);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kRecord);
}
BENCHMARK(BM_AesGcmDecrypt)->Arg(128)->Arg(256);

void BM_ChaCha20Poly1305Encrypt(benchmark::State& state) {
  uint8_t key[32] = {1}, iv[12] = {2}, aad[13] = {}, tag[16];
  std::vector<uint8_t> in(kRecord, 7), out(kRecord);
  for (auto _ : state) {
    iv[11]++;
    int ret =
        wc_ChaCha20Poly1305_Encrypt(key, iv, aad, sizeof(aad), in.data(), kRecord, out.data(), tag);
    benchmark::DoNotOptimize(ret);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kRecord);
}
BENCHMARK(BM_ChaCha20Poly1305Encrypt);

struct EccFixture {
  WC_RNG rng{};
  ecc_key key{};
  uint8_t hash[32] = {9};
  uint8_t sig[ECC_MAX_SIG_SIZE];
  word32 sig_len = sizeof(sig);
  EccFixture() {
    wc_InitRng(&rng);
    wc_ecc_init(&key);
    wc_ecc_make_key_ex(&rng, 32, &key, ECC_SECP256R1);
    wc_ecc_sign_hash(hash, sizeof(hash), sig, &sig_len, &rng, &key);
  }
  ~EccFixture() {
    wc_ecc_free(&key);
    wc_FreeRng(&rng);
  }
};

void BM_EcdsaP256Sign(benchmark::State& state) {
  EccFixture f;
  for (auto _ : state) {
    uint8_t sig[ECC_MAX_SIG_SIZE];
    word32 len = sizeof(sig);
    if (wc_ecc_sign_hash(f.hash, sizeof(f.hash), sig, &len, &f.rng, &f.key) != 0) {
      state.SkipWithError("sign failed");
    }
    benchmark::DoNotOptimize(sig);
  }
  state.counters["ops/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EcdsaP256Sign);

void BM_EcdsaP256Verify(benchmark::State& state) {
  EccFixture f;
  for (auto _ : state) {
    int ok = 0;
    if (wc_ecc_verify_hash(f.sig, f.sig_len, f.hash, sizeof(f.hash), &ok, &f.key) != 0 || !ok) {
      state.SkipWithError("verify failed");
    }
  }
  state.counters["ops/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EcdsaP256Verify);

void BM_Rsa2048Sign(benchmark::State& state) {
  WC_RNG rng;
  wc_InitRng(&rng);
  RsaKey key;
  wc_InitRsaKey(&key, nullptr);
  wc_MakeRsaKey(&key, 2048, WC_RSA_EXPONENT, &rng);
  wc_RsaSetRNG(&key, &rng);
  uint8_t digest_info[51] = {0x30, 0x31};  // DigestInfo-sized input, as TLS 1.2 signs
  uint8_t sig[256];
  for (auto _ : state) {
    int n = wc_RsaSSL_Sign(digest_info, sizeof(digest_info), sig, sizeof(sig), &key, &rng);
    if (n != 256) state.SkipWithError("sign failed");
    benchmark::DoNotOptimize(sig);
  }
  state.counters["ops/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  wc_FreeRsaKey(&key);
  wc_FreeRng(&rng);
}
BENCHMARK(BM_Rsa2048Sign);

// A TLS 1.3 handshake hashes about 150 blocks: 64-byte updates are the HMAC/HKDF case.
void BM_Sha256(benchmark::State& state) {
  std::vector<uint8_t> in(static_cast<size_t>(state.range(0)), 0x61);
  uint8_t digest[WC_SHA256_DIGEST_SIZE];
  for (auto _ : state) {
    wc_Sha256 sha;
    wc_InitSha256(&sha);
    wc_Sha256Update(&sha, in.data(), static_cast<word32>(in.size()));
    wc_Sha256Final(&sha, digest);
    benchmark::DoNotOptimize(digest);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Sha256)->Arg(64)->Arg(1024);

// Key share generation (fixed base, tools/wolfssl-x25519-fixed-base.patch) and the shared
// secret (Montgomery ladder): one of each per full handshake on each side.
void BM_X25519(benchmark::State& state) {
  const bool keygen = state.range(0) == 0;
  WC_RNG rng;
  wc_InitRng(&rng);
  curve25519_key a, b;
  wc_curve25519_init(&a);
  wc_curve25519_init(&b);
  wc_curve25519_make_key(&rng, CURVE25519_KEYSIZE, &a);
  wc_curve25519_make_key(&rng, CURVE25519_KEYSIZE, &b);
  uint8_t out[CURVE25519_KEYSIZE];
  for (auto _ : state) {
    word32 len = sizeof(out);
    int ret = keygen ? wc_curve25519_make_pub(CURVE25519_KEYSIZE, out, CURVE25519_KEYSIZE, a.k)
                     : wc_curve25519_shared_secret(&a, &b, out, &len);
    if (ret != 0) state.SkipWithError("X25519 failed");
    benchmark::DoNotOptimize(out);
  }
  state.SetLabel(keygen ? "keygen" : "shared secret");
  wc_curve25519_free(&a);
  wc_curve25519_free(&b);
  wc_FreeRng(&rng);
}
BENCHMARK(BM_X25519)->Arg(0)->Arg(1);

// ---- TlsSession ---------------------------------------------------------------------

struct Pki {
  Identity ca, server;
};

const Pki& pki() {
  static const Pki* p = [] {
    auto* out = new Pki;
    std::string detail;
    out->ca = ringside::certs::create_ca({}, &detail).value();
    ringside::certs::LeafOptions leaf;
    leaf.dns_sans = {"svc.bench"};
    out->server = ringside::certs::issue_leaf(out->ca, leaf, &detail).value();
    return out;
  }();
  return *p;
}

std::shared_ptr<const TlsContext> make_context(Role role) {
  ContextOptions options;
  options.role = role;
  options.trust_pem = role == Role::kClient ? pki().ca.cert_chain_pem : std::string();
  std::string detail;
  auto ctx =
      TlsContext::create(options, role == Role::kServer ? &pki().server : nullptr, 1, &detail);
  return ctx.ok() ? ctx.value() : nullptr;
}

struct Endpoint {
  explicit Endpoint(WOLFSSL_CTX* ctx, Role role)
      : session(ctx, role, role == Role::kClient ? "svc.bench" : "",
                role == Role::kClient ? "svc.bench" : "") {
    session.set_output(&out);
  }
  TlsSession session;
  ChunkQueue out;
  std::vector<uint8_t> in;

  // Moves everything queued to the peer's input.
  void send_to(Endpoint& peer) {
    while (!out.empty()) {
      auto span = out.front();
      peer.in.insert(peer.in.end(), span.begin(), span.end());
      out.consume(span.size());
    }
  }
  template <typename Op>
  TlsStatus feed(Op op) {
    session.set_input(in.data(), in.size());
    TlsStatus st = op();
    in.erase(in.begin(),
             in.begin() + static_cast<std::ptrdiff_t>(in.size() - session.input_pending()));
    return st;
  }
  void drain_reads() {
    uint8_t buf[kRecord];
    size_t n;
    while (feed([&] { return session.read(buf, sizeof(buf), &n); }) == TlsStatus::kOk) {
    }
    in.shrink_to_fit();
  }
};

bool handshake(Endpoint& client, Endpoint& server) {
  for (int i = 0; i < 20 && !(client.session.handshake_done() && server.session.handshake_done());
       ++i) {
    client.feed([&] { return client.session.handshake(); });
    client.send_to(server);
    server.feed([&] { return server.session.handshake(); });
    server.send_to(client);
  }
  // Deliver the TLS 1.3 session ticket so that nothing is left half-read.
  client.drain_reads();
  return client.session.handshake_done() && server.session.handshake_done();
}

void BM_TlsRecordRoundTrip(benchmark::State& state) {
  auto server_ctx = make_context(Role::kServer);
  auto client_ctx = make_context(Role::kClient);
  Endpoint client(client_ctx->ctx(0), Role::kClient), server(server_ctx->ctx(0), Role::kServer);
  if (!handshake(client, server)) {
    state.SkipWithError("handshake failed");
    return;
  }
  std::vector<uint8_t> data(kRecord, 0x5a), got(kRecord);
  for (auto _ : state) {
    client.session.write(data.data(), data.size());
    client.send_to(server);
    size_t total = 0, n = 0;
    while (total < kRecord && server.feed([&] {
      return server.session.read(got.data(), got.size(), &n);
    }) == TlsStatus::kOk) {
      total += n;
    }
    if (total != kRecord) state.SkipWithError("short read");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kRecord);
  state.SetLabel(std::string(client.session.cipher()));
}
BENCHMARK(BM_TlsRecordRoundTrip);

void BM_TlsHandshakeEcdsa(benchmark::State& state) {
  auto server_ctx = make_context(Role::kServer);
  auto client_ctx = make_context(Role::kClient);
  for (auto _ : state) {
    Endpoint client(client_ctx->ctx(0), Role::kClient), server(server_ctx->ctx(0), Role::kServer);
    if (!handshake(client, server)) state.SkipWithError("handshake failed");
  }
  state.counters["handshakes/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_TlsHandshakeEcdsa)->Unit(benchmark::kMicrosecond);

size_t heap_in_use() {
  ChunkQueue::trim_pool();
  malloc_trim(0);
  return mallinfo2().uordblks;
}

// Heap held per idle established session (after the handshake and the ticket), for the
// server side (ingress) and the client side (egress). Not a timing: read the counters.
void BM_IdleSessionHeap(benchmark::State& state) {
  const size_t count = static_cast<size_t>(state.range(0));
  const bool with_traffic = state.range(1) != 0;
  auto server_ctx = make_context(Role::kServer);
  auto client_ctx = make_context(Role::kClient);
  for (auto _ : state) {
    std::vector<std::unique_ptr<Endpoint>> clients, servers;
    size_t base = heap_in_use();
    for (size_t i = 0; i < count; ++i) {
      servers.push_back(std::make_unique<Endpoint>(server_ctx->ctx(0), Role::kServer));
    }
    size_t fresh = heap_in_use();
    for (size_t i = 0; i < count; ++i) {
      clients.push_back(std::make_unique<Endpoint>(client_ctx->ctx(0), Role::kClient));
      if (!handshake(*clients.back(), *servers[i])) state.SkipWithError("handshake failed");
      if (with_traffic) {
        // 64 KB each way first: buffers grown for full records must shrink back.
        std::vector<uint8_t> data(64 * 1024, 0x33);
        clients.back()->session.write(data.data(), data.size());
        clients.back()->send_to(*servers[i]);
        servers[i]->drain_reads();
        servers[i]->session.write(data.data(), data.size());
        servers[i]->send_to(*clients.back());
        clients.back()->drain_reads();
      }
      servers[i]->drain_reads();
    }
    size_t both = heap_in_use();
    clients.clear();
    size_t servers_only = heap_in_use();
    state.counters["server_fresh_B"] = static_cast<double>(fresh - base) / count;
    state.counters["server_idle_B"] = static_cast<double>(servers_only - base) / count;
    state.counters["client_idle_B"] = static_cast<double>(both - servers_only) / count;
  }
  state.counters["sizeof_TlsSession"] = sizeof(TlsSession);
}
BENCHMARK(BM_IdleSessionHeap)
    ->ArgNames({"sessions", "traffic"})
    ->Args({500, 0})
    ->Args({200, 1})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
