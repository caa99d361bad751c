// wolfSSL's heap use under a TlsSession, counted through wolfSSL_SetAllocators (its own
// binary: the allocators are installed before main, before wolfSSL allocates anything).
// While ciphertext keeps coming the record buffer is kept from one record to the next
// (tools/wolfssl-keep-input-buffer.patch), and once the input is drained it is freed, so
// an idle session holds none.
#include <gtest/gtest.h>

// clang-format off
#include <wolfssl/options.h>
// clang-format on
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/memory.h>

#include <cstdio>
#include <cstdlib>
#include <random>

#include "tls_test_util.h"

namespace ringside::tls {
namespace {

#if defined(USE_WOLFSSL_MEMORY) && !defined(WOLFSSL_DEBUG_MEMORY) && \
    !defined(WOLFSSL_STATIC_MEMORY) && !defined(WOLFSSL_TRACK_MEMORY)
#define RINGSIDE_COUNT_WOLFSSL_HEAP 1

// Every block carries its size in a 16-byte header (keeps malloc's alignment).
struct alignas(16) BlockHeader {
  size_t size;
};
long long g_live_bytes = 0;
long long g_allocations = 0;

void* counting_malloc(size_t size) {
  auto* header = static_cast<BlockHeader*>(std::malloc(sizeof(BlockHeader) + size));
  if (header == nullptr) return nullptr;
  header->size = size;
  g_live_bytes += static_cast<long long>(size);
  ++g_allocations;
  return header + 1;
}

void counting_free(void* ptr) {
  if (ptr == nullptr) return;
  BlockHeader* header = static_cast<BlockHeader*>(ptr) - 1;
  g_live_bytes -= static_cast<long long>(header->size);
  std::free(header);
}

void* counting_realloc(void* ptr, size_t size) {
  if (ptr == nullptr) return counting_malloc(size);
  BlockHeader* header = static_cast<BlockHeader*>(ptr) - 1;
  size_t old_size = header->size;
  auto* grown = static_cast<BlockHeader*>(std::realloc(header, sizeof(BlockHeader) + size));
  if (grown == nullptr) return nullptr;
  grown->size = size;
  g_live_bytes += static_cast<long long>(size) - static_cast<long long>(old_size);
  ++g_allocations;
  return grown + 1;
}

const bool g_installed =
    wolfSSL_SetAllocators(counting_malloc, counting_free, counting_realloc) == 0;

struct Pair {
  std::shared_ptr<const TlsContext> server_ctx, client_ctx;
  std::unique_ptr<testing::Side> server, client;
};

Pair connected_pair() {
  static const Identity ca = testing::make_ca();
  static const Identity leaf = testing::make_leaf(ca, {"memory.test"});
  Pair p;
  std::string detail;
  ContextOptions server;
  server.role = Role::kServer;
  p.server_ctx = TlsContext::create(server, &leaf, 1, &detail).value();
  ContextOptions client;
  client.role = Role::kClient;
  client.trust_pem = ca.cert_chain_pem;
  p.client_ctx = TlsContext::create(client, nullptr, 1, &detail).value();
  p.server = std::make_unique<testing::Side>(p.server_ctx->ctx(0), Role::kServer);
  p.client = std::make_unique<testing::Side>(p.client_ctx->ctx(0), Role::kClient, "memory.test",
                                             "memory.test");
  testing::run_handshake(*p.client, *p.server);
  // The session ticket, then nothing left half-read on either side.
  EXPECT_EQ(p.client->read_all(), TlsStatus::kWantRead);
  EXPECT_EQ(p.server->read_all(), TlsStatus::kWantRead);
  return p;
}

// Reads 256 KiB (17 records) on the server side in slices that split records anywhere
// (in the header, in the body, several per slice); returns how many allocations wolfSSL
// made for it, after checking the data and that a drained session holds what it held idle.
long long read_in_slices(Pair& p) {
  std::vector<uint8_t> data(256 * 1024);
  std::mt19937 rng(11);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  EXPECT_EQ(p.client->session.write(data.data(), data.size()), TlsStatus::kOk);
  testing::Side staging(nullptr, Role::kServer);
  testing::transfer(*p.client, staging);
  std::vector<uint8_t> ciphertext = std::move(staging.pending);
  EXPECT_GT(ciphertext.size(), data.size());  // 16 full records and their overhead
  p.server->received.reserve(data.size());

  const size_t slices[] = {1, 3, 700, 16401, 4, 16411, 30000, 9000, 5, 12345};
  const long long idle_bytes = g_live_bytes;
  const long long allocations_before = g_allocations;
  size_t offset = 0, slice = 0;
  while (offset < ciphertext.size()) {
    size_t n = std::min(slices[slice++ % std::size(slices)], ciphertext.size() - offset);
    p.server->pending.insert(p.server->pending.end(), ciphertext.begin() + offset,
                             ciphertext.begin() + offset + n);
    offset += n;
    TlsStatus status = p.server->read_all();
    EXPECT_EQ(status, TlsStatus::kWantRead) << p.server->session.error_detail();
    if (status != TlsStatus::kWantRead) break;
  }
  const long long allocations = g_allocations - allocations_before;

  EXPECT_EQ(p.server->received, data);
  // Drained: wolfSSL holds exactly what it held idle before the transfer.
  EXPECT_EQ(g_live_bytes, idle_bytes);
  EXPECT_GT(allocations, 0);
  return allocations;
}

TEST(TlsMemory, RecordBufferIsFreedOnceDrained) {
  ASSERT_TRUE(g_installed);
  Pair p = connected_pair();
  ASSERT_TRUE(p.client->session.handshake_done() && p.server->session.handshake_done());
  read_in_slices(p);
}

TEST(TlsMemory, RecordBufferIsKeptAcrossRecords) {
#ifdef WOLFSSL_RINGSIDE_RELEASE_INPUT
  ASSERT_TRUE(g_installed);
  Pair p = connected_pair();
  ASSERT_TRUE(p.client->session.handshake_done() && p.server->session.handshake_done());
  // Unpatched, wolfSSL allocates the record buffer again for each of the 17 records.
  EXPECT_LE(read_in_slices(p), 4) << "record buffer reallocated per record";
#else
  GTEST_SKIP() << "this wolfSSL lacks tools/wolfssl-keep-input-buffer.patch (not built by "
                  "tools/build-wolfssl.sh): it reallocates the record buffer per record";
#endif
}

TEST(TlsMemory, IdleSessionHoldsNoRecordBufferAfterFullRecords) {
  ASSERT_TRUE(g_installed);
  Pair p = connected_pair();
  const long long idle_bytes = g_live_bytes;
  std::vector<uint8_t> data(64 * 1024, 0x42);
  // Whole records only, each direction, as the proxy sees a burst that then stops.
  ASSERT_EQ(p.client->session.write(data.data(), data.size()), TlsStatus::kOk);
  testing::transfer(*p.client, *p.server);
  EXPECT_EQ(p.server->read_all(), TlsStatus::kWantRead);
  ASSERT_EQ(p.server->session.write(data.data(), data.size()), TlsStatus::kOk);
  testing::transfer(*p.server, *p.client);
  EXPECT_EQ(p.client->read_all(), TlsStatus::kWantRead);
  EXPECT_EQ(p.server->received.size(), data.size());
  EXPECT_EQ(p.client->received.size(), data.size());
  EXPECT_EQ(g_live_bytes, idle_bytes);
}

// wolfSSL heap held by one connected client + server pair of sessions (contexts built
// before counting), handshake done and input drained.
long long idle_pair_bytes(std::vector<std::string> server_alpn,
                          std::vector<std::string> client_alpn) {
  static const Identity ca = testing::make_ca();
  static const Identity leaf = testing::make_leaf(ca, {"memory.test"});
  std::string detail;
  ContextOptions server;
  server.role = Role::kServer;
  server.alpn = std::move(server_alpn);
  auto server_ctx = TlsContext::create(server, &leaf, 1, &detail).value();
  ContextOptions client;
  client.role = Role::kClient;
  client.trust_pem = ca.cert_chain_pem;
  client.alpn = std::move(client_alpn);
  auto client_ctx = TlsContext::create(client, nullptr, 1, &detail).value();
  const long long before = g_live_bytes;
  testing::Side s(server_ctx->ctx(0), Role::kServer);
  testing::Side c(client_ctx->ctx(0), Role::kClient, "memory.test", "memory.test");
  testing::run_handshake(c, s);
  EXPECT_EQ(c.read_all(), TlsStatus::kWantRead);
  EXPECT_EQ(s.read_all(), TlsStatus::kWantRead);
  EXPECT_TRUE(s.session.handshake_done() && c.session.handshake_done());
  return g_live_bytes - before;
}

TEST(TlsMemory, AlpnCostsASessionOnlyTheNegotiatedId) {
  ASSERT_TRUE(g_installed);
  const long long plain = idle_pair_bytes({}, {});
  // The client's offer reaches the server either way (curl always sends one): wolfSSL
  // keeps a copy of the offered list in the server session, ALPN configured or not.
  const long long offered = idle_pair_bytes({}, {"h2", "http/1.1"});
  const long long negotiated = idle_pair_bytes({"h2", "http/1.1"}, {"h2", "http/1.1"});
  std::printf(
      "idle client+server sessions: %lld bytes without ALPN, %lld with an offer only, "
      "%lld with h2 negotiated\n",
      plain, offered, negotiated);
  EXPECT_LE(offered - plain, 16);
#ifdef WOLFSSL_RINGSIDE_CTX_ALPN
  // Per side: one extension node, one ALPN entry and the id ("h2"), nothing for the list
  // (wolfSSL_UseALPN would copy the whole list into every session instead).
  EXPECT_LE(negotiated - offered, 2 * (48 + 32 + 8));
#endif
}

#else

TEST(TlsMemory, NotCountable) { GTEST_SKIP() << "this wolfSSL has no plain allocator hooks"; }

#endif

}  // namespace
}  // namespace ringside::tls
