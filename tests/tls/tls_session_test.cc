// TlsContext/TlsSession: complete handshakes and data transfer between a client and a
// server entirely in memory.
#include <gtest/gtest.h>

// clang-format off
#include <wolfssl/options.h>
// clang-format on
#include <wolfssl/ssl.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <regex>
#include <string>

#include "tls_test_util.h"

namespace ringside::tls {
namespace {

using testing::make_ca;
using testing::make_leaf;
using testing::run_handshake;
using testing::Side;
using testing::transfer;

constexpr const char* kService = "orders.sample-namespace";

// One CA and server/client leaves of each key type, made once for the whole suite.
struct Material {
  Identity ca_ecdsa, ca_rsa, other_ca;
  Identity server_ecdsa, server_rsa, client_ecdsa, untrusted_client, expired_server;
};

const Material& material() {
  static const Material* m = [] {
    auto* mat = new Material;
    mat->ca_ecdsa = make_ca(KeyType::kEcdsaP256, "ringside test CA");
    mat->ca_rsa = make_ca(KeyType::kRsa2048, "ringside RSA test CA");
    mat->other_ca = make_ca(KeyType::kEcdsaP256, "some other CA");
    mat->server_ecdsa = make_leaf(mat->ca_ecdsa, {kService, "*.wild.test"});
    mat->server_rsa = make_leaf(mat->ca_rsa, {kService}, KeyType::kRsa2048);
    mat->client_ecdsa = make_leaf(mat->ca_ecdsa, {"client.sample-namespace"});
    mat->untrusted_client = make_leaf(mat->other_ca, {"client.sample-namespace"});
    // Valid for one day, ten days ago.
    mat->expired_server = make_leaf(mat->ca_ecdsa, {kService}, KeyType::kEcdsaP256,
                                    std::chrono::hours(24), testing::now_seconds() - 10 * 86400);
    return mat;
  }();
  return *m;
}

std::shared_ptr<const TlsContext> server_context(const Identity& identity,
                                                 ClientCertMode mode = ClientCertMode::kNone,
                                                 std::string trust = {}, bool tls13_only = false,
                                                 unsigned workers = 1) {
  ContextOptions options;
  options.role = Role::kServer;
  options.client_cert = mode;
  options.trust_pem = std::move(trust);
  options.tls13_only = tls13_only;
  std::string detail;
  auto ctx = TlsContext::create(options, &identity, workers, &detail);
  EXPECT_TRUE(ctx.ok()) << detail;
  return ctx.ok() ? ctx.value() : nullptr;
}

std::shared_ptr<const TlsContext> client_context(const std::string& trust,
                                                 const Identity* identity = nullptr,
                                                 bool tls12_only = false) {
  ContextOptions options;
  options.role = Role::kClient;
  options.trust_pem = trust;
  options.tls12_only = tls12_only;
  std::string detail;
  auto ctx = TlsContext::create(options, identity, 1, &detail);
  EXPECT_TRUE(ctx.ok()) << detail;
  return ctx.ok() ? ctx.value() : nullptr;
}

// Sends data from one side and reads it all on the other.
std::vector<uint8_t> send_through(Side& from, Side& to, const std::vector<uint8_t>& data) {
  EXPECT_EQ(from.session.write(data.data(), data.size()), TlsStatus::kOk);
  transfer(from, to);
  to.received.clear();
  EXPECT_EQ(to.read_all(), TlsStatus::kWantRead) << to.session.error_detail();
  return to.received;
}

std::vector<uint8_t> bytes(std::string_view text) {
  return std::vector<uint8_t>(text.begin(), text.end());
}

struct HandshakeCase {
  bool rsa;
  bool tls12;
};

class HandshakeTest : public ::testing::TestWithParam<HandshakeCase> {};

TEST_P(HandshakeTest, CompletesAndMovesDataBothWays) {
  const auto& m = material();
  const HandshakeCase c = GetParam();
  auto server_ctx = server_context(c.rsa ? m.server_rsa : m.server_ecdsa);
  const std::string& trust = c.rsa ? m.ca_rsa.cert_chain_pem : m.ca_ecdsa.cert_chain_pem;
  auto client_ctx = client_context(trust, nullptr, c.tls12);
  ASSERT_TRUE(server_ctx && client_ctx);
  Side server(server_ctx->ctx(0), Role::kServer);
  Side client(client_ctx->ctx(0), Role::kClient, kService, kService);
  ASSERT_FALSE(client.session.broken());

  run_handshake(client, server);
  ASSERT_TRUE(client.session.handshake_done()) << client.session.error_detail();
  ASSERT_TRUE(server.session.handshake_done()) << server.session.error_detail();
  EXPECT_EQ(client.session.protocol(), c.tls12 ? "TLSv1.2" : "TLSv1.3");
  EXPECT_EQ(server.session.protocol(), client.session.protocol());
  std::string cipher(client.session.cipher());
  EXPECT_TRUE(cipher.find("GCM") != std::string::npos ||
              cipher.find("CHACHA20") != std::string::npos)
      << cipher;
  if (c.tls12) {
    EXPECT_NE(cipher.find(c.rsa ? "RSA" : "ECDSA"), std::string::npos) << cipher;
  }

  auto peer = client.session.peer_certificate();
  ASSERT_TRUE(peer.ok());
  EXPECT_EQ(peer->dns_sans.front(), kService);
  EXPECT_EQ(peer->key_type, c.rsa ? KeyType::kRsa2048 : KeyType::kEcdsaP256);

  EXPECT_EQ(send_through(client, server, bytes("GET / HTTP/1.1\r\n\r\n")),
            bytes("GET / HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(send_through(server, client, bytes("HTTP/1.1 200 OK\r\n\r\n")),
            bytes("HTTP/1.1 200 OK\r\n\r\n"));
}

INSTANTIATE_TEST_SUITE_P(KeysAndVersions, HandshakeTest,
                         ::testing::Values(HandshakeCase{false, false}, HandshakeCase{false, true},
                                           HandshakeCase{true, false}, HandshakeCase{true, true}),
                         [](const ::testing::TestParamInfo<HandshakeCase>& param_info) {
                           const HandshakeCase& c = param_info.param;
                           return std::string(c.rsa ? "Rsa" : "Ecdsa") +
                                  (c.tls12 ? "Tls12" : "Tls13");
                         });

struct Connected {
  std::shared_ptr<const TlsContext> server_ctx, client_ctx;
  std::unique_ptr<Side> server, client;
};

Connected connect_pair() {
  const auto& m = material();
  Connected c;
  c.server_ctx = server_context(m.server_ecdsa);
  c.client_ctx = client_context(m.ca_ecdsa.cert_chain_pem);
  c.server = std::make_unique<Side>(c.server_ctx->ctx(0), Role::kServer);
  c.client = std::make_unique<Side>(c.client_ctx->ctx(0), Role::kClient, kService, kService);
  run_handshake(*c.client, *c.server);
  EXPECT_TRUE(c.client->session.handshake_done() && c.server->session.handshake_done());
  return c;
}

TEST(TlsSession, OneMegabyteArrivesByteForByteInBothDirections) {
  auto c = connect_pair();
  std::vector<uint8_t> data(1 << 20);
  std::mt19937 rng(7);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  EXPECT_EQ(send_through(*c.client, *c.server, data), data);
  std::reverse(data.begin(), data.end());
  EXPECT_EQ(send_through(*c.server, *c.client, data), data);
}

TEST(TlsSession, ReadWithSmallBufferReturnsEverythingInOrder) {
  auto c = connect_pair();
  std::vector<uint8_t> data(40000);
  std::iota(data.begin(), data.end(), 0);
  ASSERT_EQ(c.client->session.write(data.data(), data.size()), TlsStatus::kOk);
  transfer(*c.client, *c.server);
  std::vector<uint8_t> got;
  uint8_t buf[1000];
  while (true) {
    size_t n = 0;
    auto st = c.server->feed([&] { return c.server->session.read(buf, sizeof(buf), &n); });
    if (st != TlsStatus::kOk) break;
    EXPECT_LE(n, sizeof(buf));
    got.insert(got.end(), buf, buf + n);
  }
  EXPECT_EQ(got, data);
}

TEST(TlsSession, CloseNotifyEndsTheStreamCleanly) {
  auto c = connect_pair();
  EXPECT_EQ(send_through(*c.client, *c.server, bytes("last words")), bytes("last words"));
  c.client->session.shutdown();
  ASSERT_GT(transfer(*c.client, *c.server), 0u);
  EXPECT_EQ(c.server->read_all(), TlsStatus::kClosed);
}

TEST(TlsSession, ResumesWithATicketOnAnotherWorker) {
  const auto& m = material();
  auto server_ctx = server_context(m.server_ecdsa, ClientCertMode::kNone, {}, false, 2);
  auto client_ctx = client_context(m.ca_ecdsa.cert_chain_pem);
  WOLFSSL_SESSION* saved = nullptr;
  {
    Side server(server_ctx->ctx(0), Role::kServer);
    Side client(client_ctx->ctx(0), Role::kClient, kService, kService);
    run_handshake(client, server);
    ASSERT_TRUE(client.session.handshake_done());
    // The TLS 1.3 ticket arrives after the handshake: let the client read it.
    send_through(server, client, bytes("x"));
    saved = wolfSSL_get1_session(client.session.native());
    ASSERT_NE(saved, nullptr);
    EXPECT_FALSE(client.session.resumed());
  }
  Side server(server_ctx->ctx(1), Role::kServer);
  Side client(client_ctx->ctx(0), Role::kClient, kService, kService);
  ASSERT_EQ(wolfSSL_set_session(client.session.native(), saved), WOLFSSL_SUCCESS);
  wolfSSL_SESSION_free(saved);
  run_handshake(client, server);
  ASSERT_TRUE(client.session.handshake_done()) << client.session.error_detail();
  ASSERT_TRUE(server.session.handshake_done()) << server.session.error_detail();
  EXPECT_TRUE(server.session.resumed());
  EXPECT_EQ(send_through(client, server, bytes("again")), bytes("again"));
}

// ---- client certificates ------------------------------------------------------------

struct MtlsResult {
  bool client_ok, server_ok;
  std::unique_ptr<Side> server, client;
};

MtlsResult mtls(ClientCertMode mode, const Identity* client_identity) {
  const auto& m = material();
  auto server_ctx = server_context(m.server_ecdsa, mode, m.ca_ecdsa.cert_chain_pem);
  auto client_ctx = client_context(m.ca_ecdsa.cert_chain_pem, client_identity);
  MtlsResult r;
  r.server = std::make_unique<Side>(server_ctx->ctx(0), Role::kServer);
  r.client = std::make_unique<Side>(client_ctx->ctx(0), Role::kClient, kService, kService);
  run_handshake(*r.client, *r.server);
  // In TLS 1.3 the client finishes first; the server's verdict reaches it on read.
  if (r.client->session.handshake_done()) {
    r.client->session.write(reinterpret_cast<const uint8_t*>("ping"), 4);
    transfer(*r.client, *r.server);
    r.server->read_all();
    transfer(*r.server, *r.client);
    r.client->read_all();
  }
  r.client_ok = r.client->last != TlsStatus::kError;
  r.server_ok = r.server->session.handshake_done() && r.server->last != TlsStatus::kError;
  return r;
}

TEST(TlsSession, RequiredClientCertificateIsVerifiedAndVisible) {
  auto r = mtls(ClientCertMode::kRequire, &material().client_ecdsa);
  ASSERT_TRUE(r.server_ok) << r.server->session.error_detail();
  auto peer = r.server->session.peer_certificate();
  ASSERT_TRUE(peer.ok());
  EXPECT_EQ(peer->dns_sans, std::vector<std::string>{"client.sample-namespace"});
  EXPECT_EQ(r.server->received, bytes("ping"));
}

TEST(TlsSession, MissingRequiredClientCertificateFailsVerification) {
  auto r = mtls(ClientCertMode::kRequire, nullptr);
  EXPECT_FALSE(r.server_ok);
  EXPECT_EQ(r.server->session.error_kind(), ErrorKind::kVerify);
  EXPECT_NE(r.server->session.error_detail().find("client sent no certificate"), std::string::npos)
      << r.server->session.error_detail();
  EXPECT_TRUE(r.server->received.empty());
  EXPECT_FALSE(r.client_ok);
}

TEST(TlsSession, OptionalClientCertificateMayBeAbsent) {
  auto r = mtls(ClientCertMode::kOptional, nullptr);
  ASSERT_TRUE(r.server_ok) << r.server->session.error_detail();
  EXPECT_FALSE(r.server->session.peer_certificate().ok());
  EXPECT_EQ(r.server->received, bytes("ping"));
}

TEST(TlsSession, OptionalClientCertificateMustVerifyWhenPresent) {
  auto r = mtls(ClientCertMode::kOptional, &material().untrusted_client);
  EXPECT_FALSE(r.server_ok);
  EXPECT_EQ(r.server->session.error_kind(), ErrorKind::kVerify);
  EXPECT_NE(r.server->session.error_detail().find("unable to get local issuer certificate"),
            std::string::npos)
      << r.server->session.error_detail();
  EXPECT_TRUE(r.server->received.empty());
}

// ---- identities: URI SANs, the server's peer check, the client's required URI SAN ------

Identity spiffe_leaf(const Identity& ca, std::string dns, std::string uri) {
  certs::LeafOptions options;
  options.dns_sans = {std::move(dns)};
  options.uri_sans = {std::move(uri)};
  std::string detail;
  auto leaf = certs::issue_leaf(ca, options, &detail);
  EXPECT_TRUE(leaf.ok()) << detail;
  return leaf.ok() ? leaf.value() : Identity{};
}

TEST(TlsIdentity, PeerCheckSeesUriSansAndCanRefuse) {
  const auto& m = material();
  const Identity client = spiffe_leaf(m.ca_ecdsa, "orders.ns", "spiffe://td/ns/orders");
  auto server_ctx =
      server_context(m.server_ecdsa, ClientCertMode::kRequire, m.ca_ecdsa.cert_chain_pem);
  auto client_ctx = client_context(m.ca_ecdsa.cert_chain_pem, &client);
  for (const bool admit : {true, false}) {
    struct Seen {
      bool admit;
      std::vector<std::string> uris, dns;
    } seen{admit, {}, {}};
    Side server(server_ctx->ctx(0), Role::kServer);
    Side peer(client_ctx->ctx(0), Role::kClient, kService, kService);
    server.session.set_peer_check(
        [](void* arg, const CertInfo& leaf, bool /*verified*/) {
          auto* s = static_cast<Seen*>(arg);
          s->uris = leaf.uri_sans;
          s->dns = leaf.dns_sans;
          return s->admit;
        },
        &seen);
    run_handshake(peer, server);
    EXPECT_EQ(seen.uris, std::vector<std::string>{"spiffe://td/ns/orders"});
    EXPECT_EQ(seen.dns, std::vector<std::string>{"orders.ns"});
    EXPECT_EQ(server.session.handshake_done(), admit);
    EXPECT_EQ(server.session.peer_refused(), !admit);
    if (!admit) {
      EXPECT_NE(server.session.error_detail().find("client identity not allowed"),
                std::string::npos)
          << server.session.error_detail();
    }
  }
}

TEST(TlsIdentity, EarlyPeerCheckRefusesBeforeAnySignatureIsChecked) {
  // An early check sees the leaf as sent (verified = false) before wolfSSL checks its
  // chain: a leaf from an untrusted CA that the check refuses is refused as an identity
  // (no signature was checked to find the CA unknown); one the early check lets through
  // then fails verification as before, and the check is not asked about it again.
  const auto& m = material();
  auto server_ctx =
      server_context(m.server_ecdsa, ClientCertMode::kRequire, m.ca_ecdsa.cert_chain_pem);
  auto untrusted_ctx = client_context(m.ca_ecdsa.cert_chain_pem, &m.untrusted_client);
  auto trusted_ctx = client_context(m.ca_ecdsa.cert_chain_pem, &m.client_ecdsa);
  struct Seen {
    bool admit;
    std::vector<bool> calls;  // the `verified` of each call
  };
  const PeerCheck check = [](void* arg, const CertInfo& leaf, bool verified) {
    auto* s = static_cast<Seen*>(arg);
    s->calls.push_back(verified);
    EXPECT_EQ(leaf.dns_sans, std::vector<std::string>{"client.sample-namespace"});
    return s->admit;
  };
  for (const bool admit : {false, true}) {
    Seen seen{admit, {}};
    Side server(server_ctx->ctx(0), Role::kServer);
    Side peer(untrusted_ctx->ctx(0), Role::kClient, kService, kService);
    server.session.set_peer_check(check, &seen, /*early=*/true);
    run_handshake(peer, server);
    EXPECT_FALSE(server.session.handshake_done());
    EXPECT_EQ(seen.calls, std::vector<bool>{false});
    EXPECT_EQ(server.session.peer_refused(), !admit);
    if (!admit) {
      EXPECT_NE(server.session.error_detail().find("client identity not allowed"),
                std::string::npos)
          << server.session.error_detail();
    } else {
      EXPECT_EQ(server.session.error_detail().find("client identity not allowed"),
                std::string::npos)
          << server.session.error_detail();
    }
  }
  // A trusted leaf the early check admits is asked about again once verified.
  Seen seen{true, {}};
  Side server(server_ctx->ctx(0), Role::kServer);
  Side peer(trusted_ctx->ctx(0), Role::kClient, kService, kService);
  server.session.set_peer_check(check, &seen, /*early=*/true);
  run_handshake(peer, server);
  EXPECT_TRUE(server.session.handshake_done()) << server.session.error_detail();
  EXPECT_EQ(seen.calls, (std::vector<bool>{false, true}));
  // Without early, only the verified leaf is asked about.
  Seen late{true, {}};
  Side server2(server_ctx->ctx(0), Role::kServer);
  Side peer2(trusted_ctx->ctx(0), Role::kClient, kService, kService);
  server2.session.set_peer_check(check, &late);
  run_handshake(peer2, server2);
  EXPECT_TRUE(server2.session.handshake_done());
  EXPECT_EQ(late.calls, std::vector<bool>{true});
}

TEST(TlsIdentity, ClientRequiresTheUriSan) {
  const auto& m = material();
  const Identity server_id = spiffe_leaf(m.ca_ecdsa, kService, "spiffe://td/ns/app");
  auto server_ctx = server_context(server_id);
  auto client_ctx = client_context(m.ca_ecdsa.cert_chain_pem);
  // With the DNS SAN required too, and without it (egress san=none).
  for (const std::string_view dns : {std::string_view(kService), std::string_view()}) {
    Side server(server_ctx->ctx(0), Role::kServer);
    Side client(client_ctx->ctx(0), Role::kClient, kService, dns, "spiffe://td/ns/app");
    run_handshake(client, server);
    EXPECT_TRUE(client.session.handshake_done()) << client.session.error_detail();

    Side server2(server_ctx->ctx(0), Role::kServer);
    Side wrong(client_ctx->ctx(0), Role::kClient, kService, dns, "spiffe://td/ns/other");
    run_handshake(wrong, server2);
    EXPECT_FALSE(wrong.session.handshake_done());
    EXPECT_EQ(wrong.session.error_kind(), ErrorKind::kVerify);
    EXPECT_NE(wrong.session.error_detail().find("URI SAN mismatch: wanted spiffe://td/ns/other, "
                                                "have [spiffe://td/ns/app]"),
              std::string::npos)
        << wrong.session.error_detail();
  }
  // A certificate without any URI SAN never carries the wanted one.
  auto plain_ctx = server_context(m.server_ecdsa);
  Side server(plain_ctx->ctx(0), Role::kServer);
  Side client(client_ctx->ctx(0), Role::kClient, kService, kService, "spiffe://td/ns/app");
  run_handshake(client, server);
  EXPECT_FALSE(client.session.handshake_done());
  EXPECT_NE(client.session.error_detail().find("have []"), std::string::npos);
}

// ---- server certificate verification -------------------------------------------------

struct ClientVerdict {
  TlsStatus status;
  ErrorKind kind;
  std::string detail;
};

ClientVerdict connect_to(const Identity& server_identity, const std::string& trust,
                         std::string_view verify_name) {
  auto server_ctx = server_context(server_identity);
  auto client_ctx = client_context(trust);
  Side server(server_ctx->ctx(0), Role::kServer);
  Side client(client_ctx->ctx(0), Role::kClient, verify_name, verify_name);
  run_handshake(client, server);
  return {client.session.handshake_done() ? TlsStatus::kOk : client.last,
          client.session.error_kind(), client.session.error_detail()};
}

TEST(TlsVerify, WrongSanIsRejected) {
  const auto& m = material();
  auto v = connect_to(m.server_ecdsa, m.ca_ecdsa.cert_chain_pem, "payments.sample-namespace");
  EXPECT_EQ(v.status, TlsStatus::kError);
  EXPECT_EQ(v.kind, ErrorKind::kVerify);
  EXPECT_NE(v.detail.find("name mismatch: wanted payments.sample-namespace"), std::string::npos)
      << v.detail;
}

TEST(TlsVerify, WildcardSanMatchesOneLabel) {
  const auto& m = material();
  EXPECT_EQ(connect_to(m.server_ecdsa, m.ca_ecdsa.cert_chain_pem, "a.wild.test").status,
            TlsStatus::kOk);
  EXPECT_EQ(connect_to(m.server_ecdsa, m.ca_ecdsa.cert_chain_pem, "a.b.wild.test").status,
            TlsStatus::kError);
}

TEST(TlsVerify, UntrustedCaIsRejected) {
  const auto& m = material();
  auto v = connect_to(m.server_ecdsa, m.other_ca.cert_chain_pem, kService);
  EXPECT_EQ(v.status, TlsStatus::kError);
  EXPECT_EQ(v.kind, ErrorKind::kVerify);
  EXPECT_NE(v.detail.find("unable to get local issuer certificate"), std::string::npos) << v.detail;
}

TEST(TlsVerify, ExpiredCertificateIsRejected) {
  const auto& m = material();
  auto v = connect_to(m.expired_server, m.ca_ecdsa.cert_chain_pem, kService);
  EXPECT_EQ(v.status, TlsStatus::kError);
  EXPECT_EQ(v.kind, ErrorKind::kVerify);
  EXPECT_NE(v.detail.find("server certificate rejected: expired"), std::string::npos) << v.detail;
}

TEST(TlsVerify, CommonNameOnlyCertificateIsRejected) {
  if (!testing::have_openssl()) GTEST_SKIP() << "openssl command not available";
  std::string dir = testing::make_temp_dir(), out;
  ASSERT_EQ(testing::run_command("cd " + dir +
                                     " && openssl req -x509 -newkey ec -pkeyopt "
                                     "ec_paramgen_curve:P-256 -nodes -subj /CN=" +
                                     kService + " -keyout key.pem -out cert.pem -days 2",
                                 &out),
            0)
      << out;
  Identity cn_only;
  ASSERT_EQ(testing::run_command("cat " + dir + "/cert.pem", &cn_only.cert_chain_pem), 0);
  ASSERT_EQ(testing::run_command("cat " + dir + "/key.pem", &cn_only.key_pem), 0);
  auto v = connect_to(cn_only, cn_only.cert_chain_pem, kService);
  EXPECT_EQ(v.status, TlsStatus::kError);
  EXPECT_EQ(v.kind, ErrorKind::kVerify);
  EXPECT_NE(v.detail.find("no DNS SAN"), std::string::npos) << v.detail;
  testing::run_command("rm -rf " + dir, &out);
}

TEST(TlsVerify, InsecureClientAcceptsAnything) {
  const auto& m = material();
  ContextOptions options;
  options.role = Role::kClient;
  options.insecure = true;
  std::string detail;
  auto client_ctx = TlsContext::create(options, nullptr, 1, &detail);
  ASSERT_TRUE(client_ctx.ok()) << detail;
  auto server_ctx = server_context(m.expired_server);
  Side server(server_ctx->ctx(0), Role::kServer);
  Side client(client_ctx.value()->ctx(0), Role::kClient);
  run_handshake(client, server);
  EXPECT_TRUE(client.session.handshake_done()) << client.session.error_detail();
}

// ---- hostile input on a server --------------------------------------------------------

TlsStatus server_given(const std::vector<uint8_t>& input, std::string* detail = nullptr) {
  auto server_ctx = server_context(material().server_ecdsa);
  Side server(server_ctx->ctx(0), Role::kServer);
  server.pending = input;
  TlsStatus st = server.handshake();
  if (detail) *detail = server.session.error_detail();
  return st;
}

TEST(TlsServerInput, PlaintextHttpFailsCleanly) {
  std::string detail;
  EXPECT_EQ(server_given(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), &detail), TlsStatus::kError);
  EXPECT_FALSE(detail.empty());
}

// A server given input it cannot take as a ClientHello fails, with a TLS error, having
// sent nothing but (at most) an alert, and stays failed.
void expect_refused(const std::vector<uint8_t>& input, const std::string& what) {
  auto server_ctx = server_context(material().server_ecdsa);
  Side server(server_ctx->ctx(0), Role::kServer);
  server.pending = input;
  EXPECT_EQ(server.handshake(), TlsStatus::kError) << what;
  EXPECT_EQ(server.session.error_kind(), ErrorKind::kTls) << what;
  EXPECT_FALSE(server.session.error_detail().empty()) << what;
  if (!server.out.empty()) {
    EXPECT_EQ(server.out.front()[0], 0x15) << what << ": not an alert";
  }
  EXPECT_EQ(server.handshake(), TlsStatus::kError) << what;
}

TEST(TlsServerInput, RandomGarbageFailsCleanly) {
  std::mt19937 rng(1);
  for (int i = 0; i < 50; ++i) {
    std::vector<uint8_t> junk(1 + rng() % 3000);
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    if (i % 2 == 0) {
      // A whole handshake record (type, version, length as announced) of random bytes.
      junk.resize(5 + std::min<size_t>(junk.size(), 1000));
      const size_t body = junk.size() - 5;
      junk[0] = 0x16;
      junk[1] = 0x03;
      junk[2] = 0x01;
      junk[3] = static_cast<uint8_t>(body >> 8);
      junk[4] = static_cast<uint8_t>(body);
    } else if (junk[0] == 0x16) {
      junk[0] = 0x17;  // anything but a handshake record is refused at its first byte
    }
    expect_refused(junk, "case " + std::to_string(i));
  }
  expect_refused(std::vector<uint8_t>(100, 0xff), "0xff bytes");
}

TEST(TlsServerInput, PartOfARecordWaitsForTheRest) {
  // A handshake record announced longer than what has arrived: nothing to judge yet, so
  // the server waits (and says nothing), whatever the bytes so far.
  std::mt19937 rng(2);
  for (int i = 0; i < 20; ++i) {
    std::vector<uint8_t> head(5 + rng() % 200);
    for (auto& b : head) b = static_cast<uint8_t>(rng());
    head[0] = 0x16;
    head[1] = 0x03;
    head[2] = 0x01;
    head[3] = 0x01;  // 256 + head[4] bytes announced, fewer given
    head[4] = 0xff;
    auto server_ctx = server_context(material().server_ecdsa);
    Side server(server_ctx->ctx(0), Role::kServer);
    server.pending = head;
    EXPECT_EQ(server.handshake(), TlsStatus::kWantRead) << "case " << i;
    EXPECT_TRUE(server.out.empty()) << "case " << i;
  }
}

TEST(TlsServerInput, HalfAClientHelloWaitsThenGarbageFails) {
  const auto& m = material();
  auto client_ctx = client_context(m.ca_ecdsa.cert_chain_pem);
  Side client(client_ctx->ctx(0), Role::kClient, kService, kService);
  ASSERT_EQ(client.handshake(), TlsStatus::kWantRead);
  std::vector<uint8_t> hello;
  while (!client.out.empty()) {
    auto s = client.out.front();
    hello.insert(hello.end(), s.begin(), s.end());
    client.out.consume(s.size());
  }
  ASSERT_GT(hello.size(), 100u);
  auto server_ctx = server_context(m.server_ecdsa);
  Side server(server_ctx->ctx(0), Role::kServer);
  server.pending.assign(hello.begin(), hello.begin() + static_cast<long>(hello.size() / 2));
  EXPECT_EQ(server.handshake(), TlsStatus::kWantRead);
  EXPECT_TRUE(server.out.empty());
  // The rest of the record, overwritten with zeros, is a malformed ClientHello.
  server.pending.assign(hello.size() - hello.size() / 2, 0);
  EXPECT_EQ(server.handshake(), TlsStatus::kError);
  EXPECT_EQ(server.session.error_kind(), ErrorKind::kTls);
  // Once failed, the session stays failed.
  EXPECT_EQ(server.handshake(), TlsStatus::kError);
}

// ---- ALPN ------------------------------------------------------------------------------

struct AlpnResult {
  std::string server, client;  // what each side reports as negotiated
  AppProtocol server_protocol = AppProtocol::kOther, client_protocol = AppProtocol::kOther;
};

// One handshake: server accepting server_ids, client offering client_ids (empty: none).
AlpnResult negotiate(std::vector<std::string> server_ids, std::vector<std::string> client_ids,
                     bool tls12 = false) {
  const auto& m = material();
  std::string detail;
  ContextOptions server_options;
  server_options.alpn = std::move(server_ids);
  auto server_ctx = TlsContext::create(server_options, &m.server_ecdsa, 1, &detail);
  EXPECT_TRUE(server_ctx.ok()) << detail;
  ContextOptions client_options;
  client_options.role = Role::kClient;
  client_options.trust_pem = m.ca_ecdsa.cert_chain_pem;
  client_options.tls12_only = tls12;
  client_options.alpn = std::move(client_ids);
  auto client_ctx = TlsContext::create(client_options, nullptr, 1, &detail);
  EXPECT_TRUE(client_ctx.ok()) << detail;
  if (!server_ctx.ok() || !client_ctx.ok()) return {};
  Side server((*server_ctx)->ctx(0), Role::kServer);
  Side client((*client_ctx)->ctx(0), Role::kClient, kService, kService);
  run_handshake(client, server);
  EXPECT_TRUE(client.session.handshake_done()) << client.session.error_detail();
  EXPECT_TRUE(server.session.handshake_done()) << server.session.error_detail();
  // Data still flows: a mismatch never costs the connection.
  EXPECT_EQ(send_through(client, server, bytes("ping")), bytes("ping"));
  return {std::string(server.session.alpn()), std::string(client.session.alpn()),
          server.session.app_protocol(), client.session.app_protocol()};
}

TEST(TlsAlpn, BothOfferH2AndAgreeOnIt) {
  for (bool tls12 : {false, true}) {
    AlpnResult r = negotiate({"h2", "http/1.1"}, {"h2", "http/1.1"}, tls12);
    EXPECT_EQ(r.server, "h2") << "tls12=" << tls12;
    EXPECT_EQ(r.client, "h2") << "tls12=" << tls12;
    EXPECT_EQ(r.server_protocol, AppProtocol::kHttp2);
    EXPECT_EQ(r.client_protocol, AppProtocol::kHttp2);
  }
}

TEST(TlsAlpn, AnHttp11OnlyClientGetsHttp11) {
  AlpnResult r = negotiate({"h2", "http/1.1"}, {"http/1.1"});
  EXPECT_EQ(r.server, "http/1.1");
  EXPECT_EQ(r.client, "http/1.1");
  EXPECT_EQ(r.server_protocol, AppProtocol::kHttp11);
}

TEST(TlsAlpn, TheClientsOrderWins) {
  // wolfSSL takes the first id of the client's list that the server accepts.
  EXPECT_EQ(negotiate({"http/1.1", "h2"}, {"h2", "http/1.1"}).server, "h2");
  EXPECT_EQ(negotiate({"h2", "http/1.1"}, {"http/1.1", "h2"}).server, "http/1.1");
}

TEST(TlsAlpn, AClientWithoutAlpnConnectsWithNothingNegotiated) {
  AlpnResult r = negotiate({"h2", "http/1.1"}, {});
  EXPECT_EQ(r.server, "");
  EXPECT_EQ(r.client, "");
  EXPECT_EQ(r.server_protocol, AppProtocol::kNone);
  EXPECT_EQ(r.client_protocol, AppProtocol::kNone);
}

TEST(TlsAlpn, AMismatchContinuesWithNothingNegotiated) {
  // As nginx and Envoy: a client offering none of the listener's ids still connects.
  for (bool tls12 : {false, true}) {
    AlpnResult r = negotiate({"h2", "http/1.1"}, {"foo"}, tls12);
    EXPECT_EQ(r.server, "") << "tls12=" << tls12;
    EXPECT_EQ(r.client, "") << "tls12=" << tls12;
  }
}

TEST(TlsAlpn, AServerWithoutAlpnIgnoresTheClientsList) {
  AlpnResult r = negotiate({}, {"h2", "http/1.1"});
  EXPECT_EQ(r.server, "");
  EXPECT_EQ(r.client, "");
}

TEST(TlsAlpn, OtherIdsAreNegotiatedToo) {
  AlpnResult r = negotiate({"h2", "acme-tls/1"}, {"acme-tls/1"});
  EXPECT_EQ(r.server, "acme-tls/1");
  EXPECT_EQ(r.server_protocol, AppProtocol::kOther);
}

TEST(TlsAlpn, NegotiatedAgainOnResumption) {
  const auto& m = material();
  std::string detail;
  ContextOptions server_options;
  server_options.alpn = {"h2", "http/1.1"};
  auto server_ctx = TlsContext::create(server_options, &m.server_ecdsa, 2, &detail).value();
  ContextOptions client_options;
  client_options.role = Role::kClient;
  client_options.trust_pem = m.ca_ecdsa.cert_chain_pem;
  client_options.alpn = {"h2"};
  auto client_ctx = TlsContext::create(client_options, nullptr, 1, &detail).value();
  WOLFSSL_SESSION* saved = nullptr;
  {
    Side server(server_ctx->ctx(0), Role::kServer);
    Side client(client_ctx->ctx(0), Role::kClient, kService, kService);
    run_handshake(client, server);
    send_through(server, client, bytes("x"));  // the TLS 1.3 ticket
    saved = wolfSSL_get1_session(client.session.native());
    ASSERT_NE(saved, nullptr);
  }
  Side server(server_ctx->ctx(1), Role::kServer);
  Side client(client_ctx->ctx(0), Role::kClient, kService, kService);
  ASSERT_EQ(wolfSSL_set_session(client.session.native(), saved), WOLFSSL_SUCCESS);
  wolfSSL_SESSION_free(saved);
  run_handshake(client, server);
  ASSERT_TRUE(server.session.handshake_done()) << server.session.error_detail();
  EXPECT_TRUE(server.session.resumed());
  EXPECT_EQ(server.session.alpn(), "h2");
  EXPECT_EQ(client.session.alpn(), "h2");
}

TEST(TlsAlpn, ClassifiesIds) {
  EXPECT_EQ(classify_alpn(""), AppProtocol::kNone);
  EXPECT_EQ(classify_alpn("h2"), AppProtocol::kHttp2);
  EXPECT_EQ(classify_alpn("http/1.1"), AppProtocol::kHttp11);
  EXPECT_EQ(classify_alpn("h2c"), AppProtocol::kOther);
  EXPECT_EQ(classify_alpn("http/1.0"), AppProtocol::kOther);
}

TEST(TlsAlpn, ContextRefusesBadIds) {
  const auto& m = material();
  for (const std::string& bad : {std::string(), std::string("h2,http/1.1"), std::string("a:b"),
                                 std::string("with space"), std::string(256, 'x')}) {
    ContextOptions options;
    options.alpn = {"h2", bad};
    std::string detail;
    EXPECT_FALSE(TlsContext::create(options, &m.server_ecdsa, 1, &detail).ok()) << bad;
    EXPECT_NE(detail.find("ALPN protocol id"), std::string::npos) << detail;
  }
  std::string detail;
  EXPECT_TRUE(valid_alpn_id(std::string(255, 'x'), &detail)) << detail;
}

// ---- failures in words -----------------------------------------------------------------
// Each failure an operator meets, on both sides, as error_detail() words it: the cause,
// the alert by name when the peer sent one, and wolfSSL's code last.

struct Failure {
  std::string client;  // the client session's error_detail()
  std::string server;
  ErrorKind client_kind = ErrorKind::kTls;
  ErrorKind server_kind = ErrorKind::kTls;
};

// A full handshake, then one byte each way so that a verdict sent after a side thought
// it had finished (TLS 1.3 client certificates) reaches it.
Failure handshake_between(const std::shared_ptr<const TlsContext>& client_ctx,
                          const std::shared_ptr<const TlsContext>& server_ctx,
                          std::string_view name = kService, const char* client_ciphers = nullptr) {
  Side server(server_ctx->ctx(0), Role::kServer);
  Side client(client_ctx->ctx(0), Role::kClient, name, name);
  if (client_ciphers != nullptr) {
    EXPECT_EQ(wolfSSL_set_cipher_list(client.session.native(), client_ciphers), WOLFSSL_SUCCESS);
  }
  run_handshake(client, server);
  if (client.session.handshake_done() && client.last != TlsStatus::kError) {
    client.session.write(reinterpret_cast<const uint8_t*>("x"), 1);
    transfer(client, server);
    server.read_all();
    transfer(server, client);
    client.read_all();
  }
  EXPECT_TRUE(client.last == TlsStatus::kError || server.last == TlsStatus::kError)
      << "the handshake was expected to fail";
  return {client.session.error_detail(), server.session.error_detail(), client.session.error_kind(),
          server.session.error_kind()};
}

// "cause; wolfSSL: text (-NNN)": the code is kept for the curious, after the words.
void expect_worded(const std::string& detail, const std::string& cause) {
  EXPECT_EQ(detail.rfind(cause, 0), 0u) << "wanted it to start with: " << cause << "\n"
                                        << "got: " << detail;
  EXPECT_TRUE(std::regex_search(detail, std::regex("; wolfSSL: [^;]+ \\(-[0-9]+\\)$"))) << detail;
}

TEST(TlsFailureWords, ClientThatRejectsOurCertificateNamesItsAlert) {
  const auto& m = material();
  auto f =
      handshake_between(client_context(m.other_ca.cert_chain_pem), server_context(m.server_ecdsa));
  expect_worded(f.server, "client rejected our certificate (alert ");
  EXPECT_EQ(f.server_kind, ErrorKind::kVerify);
  expect_worded(f.client, "server certificate rejected: unknown CA");
  EXPECT_EQ(f.client_kind, ErrorKind::kVerify);
}

TEST(TlsFailureWords, ExpiredAndMisnamedCertificates) {
  const auto& m = material();
  auto expired = handshake_between(client_context(m.ca_ecdsa.cert_chain_pem),
                                   server_context(m.expired_server));
  expect_worded(expired.client, "server certificate rejected: expired");
  expect_worded(expired.server, "client rejected our certificate (alert certificate_expired)");
  auto misnamed = handshake_between(client_context(m.ca_ecdsa.cert_chain_pem),
                                    server_context(m.server_ecdsa), "payments.sample-namespace");
  expect_worded(misnamed.client,
                "server certificate rejected: name mismatch: wanted payments.sample-namespace");
  expect_worded(misnamed.server, "client rejected our certificate (alert ");
}

TEST(TlsFailureWords, PlaintextAlertOfATls13ClientIsNamed) {
  // OpenSSL rejects a TLS 1.3 server's certificate before it has handshake keys, so its
  // alert comes in the clear: wolfSSL calls it a parse error; the log names the alert.
  const auto& m = material();
  auto server_ctx = server_context(m.server_ecdsa);
  auto client_ctx = client_context(m.ca_ecdsa.cert_chain_pem);
  Side server(server_ctx->ctx(0), Role::kServer);
  Side client(client_ctx->ctx(0), Role::kClient, kService, kService);
  ASSERT_EQ(client.handshake(), TlsStatus::kWantRead);
  transfer(client, server);
  ASSERT_EQ(server.handshake(), TlsStatus::kWantRead);
  server.pending = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 48};  // fatal unknown_ca
  ASSERT_EQ(server.handshake(), TlsStatus::kError);
  expect_worded(server.session.error_detail(),
                "client rejected our certificate (alert unknown_ca)");
  EXPECT_EQ(server.session.error_kind(), ErrorKind::kVerify);
}

TEST(TlsFailureWords, Tls12ClientAgainstTls13Only) {
  const auto& m = material();
  auto f = handshake_between(client_context(m.ca_ecdsa.cert_chain_pem, nullptr, true),
                             server_context(m.server_ecdsa, ClientCertMode::kNone, {}, true));
  expect_worded(f.server, "client offered only TLS 1.2; --tls13-only is set");
  expect_worded(f.client, "server refused our TLS versions (alert protocol_version)");
}

TEST(TlsFailureWords, NoSharedCipher) {
  const auto& m = material();
  // A TLS 1.2 client offering CBC only, which ringside never accepts.
  auto f = handshake_between(client_context(m.ca_ecdsa.cert_chain_pem, nullptr, true),
                             server_context(m.server_ecdsa), kService, "ECDHE-ECDSA-AES128-SHA256");
  expect_worded(f.server, "no shared cipher");
  expect_worded(f.client,
                "server found no cipher, group or signature scheme in common (alert "
                "handshake_failure)");
}

TEST(TlsFailureWords, MutualTlsBothWays) {
  auto missing = mtls(ClientCertMode::kRequire, nullptr);
  expect_worded(missing.server->session.error_detail(),
                "client sent no certificate (client-cert=require)");
  expect_worded(missing.client->session.error_detail(),
                "server requires a client certificate; none was sent (alert "
                "certificate_required)");
  auto untrusted = mtls(ClientCertMode::kRequire, &material().untrusted_client);
  expect_worded(untrusted.server->session.error_detail(),
                "client certificate rejected: unknown CA");
  expect_worded(untrusted.client->session.error_detail(),
                "server rejected our certificate (alert ");
  EXPECT_EQ(untrusted.client->session.error_kind(), ErrorKind::kVerify);
}

TEST(TlsFailureWords, PlaintextAndGarbageOnATlsPort) {
  auto detail_for = [](std::string_view input) {
    std::string detail;
    EXPECT_EQ(server_given(std::vector<uint8_t>(input.begin(), input.end()), &detail),
              TlsStatus::kError);
    return detail;
  };
  expect_worded(detail_for("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                "plaintext on a TLS port (an HTTP request: the client used http://)");
  expect_worded(detail_for("SSH-2.0-OpenSSH_9.2\r\n"), "plaintext on a TLS port");
  expect_worded(detail_for(std::string_view("\0\1garbage", 9)),
                "not TLS on a TLS port (first byte 0x00)");
  // A handshake record that is not a ClientHello is TLS gone wrong, not plaintext.
  std::vector<uint8_t> record = {0x16, 0x03, 0x01, 0x00, 0x04, 0x63, 0x00, 0x00, 0x00};
  std::string detail;
  EXPECT_EQ(server_given(record, &detail), TlsStatus::kError);
  expect_worded(detail, "malformed TLS handshake from the client");
}

TEST(TlsFailureWords, PeerSentNothingUntilItsFirstByte) {
  auto server_ctx = server_context(material().server_ecdsa);
  Side server(server_ctx->ctx(0), Role::kServer);
  EXPECT_TRUE(server.session.peer_sent_nothing());
  EXPECT_EQ(server.handshake(), TlsStatus::kWantRead);  // nothing arrived yet
  EXPECT_TRUE(server.session.peer_sent_nothing());
  server.pending = {0x16};
  EXPECT_EQ(server.handshake(), TlsStatus::kWantRead);
  EXPECT_FALSE(server.session.peer_sent_nothing());
}

// ---- context construction -------------------------------------------------------------

TEST(TlsContext, RejectsBadConfigurations) {
  const auto& m = material();
  std::string detail;
  ContextOptions server;
  EXPECT_FALSE(TlsContext::create(server, nullptr, 1, &detail).ok());
  EXPECT_NE(detail.find("needs a certificate"), std::string::npos) << detail;

  ContextOptions client;
  client.role = Role::kClient;
  EXPECT_FALSE(TlsContext::create(client, nullptr, 1, &detail).ok());
  EXPECT_NE(detail.find("trust"), std::string::npos) << detail;

  Identity mismatched{m.server_ecdsa.cert_chain_pem, m.client_ecdsa.key_pem};
  EXPECT_FALSE(TlsContext::create(server, &mismatched, 1, &detail).ok());
  EXPECT_NE(detail.find("does not match"), std::string::npos) << detail;

  server.client_cert = ClientCertMode::kRequire;
  EXPECT_FALSE(TlsContext::create(server, &m.server_ecdsa, 1, &detail).ok());
  EXPECT_NE(detail.find("trust"), std::string::npos) << detail;
}

TEST(TlsContext, OneCtxPerWorkerAndTheLeafFacts) {
  auto ctx = server_context(material().server_ecdsa, ClientCertMode::kNone, {}, false, 3);
  ASSERT_TRUE(ctx);
  EXPECT_EQ(ctx->workers(), 3u);
  EXPECT_NE(ctx->ctx(0), ctx->ctx(1));
  EXPECT_NE(ctx->ctx(1), ctx->ctx(2));
  EXPECT_EQ(ctx->role(), Role::kServer);
  EXPECT_EQ(ctx->cert().dns_sans.front(), kService);
}

TEST(TlsContext, Tls13OnlyServerRefusesTls12) {
  const auto& m = material();
  auto server_ctx = server_context(m.server_ecdsa, ClientCertMode::kNone, {}, true);
  auto client_ctx = client_context(m.ca_ecdsa.cert_chain_pem, nullptr, /*tls12_only=*/true);
  Side server(server_ctx->ctx(0), Role::kServer);
  Side client(client_ctx->ctx(0), Role::kClient, kService, kService);
  run_handshake(client, server);
  EXPECT_FALSE(server.session.handshake_done());
  EXPECT_EQ(server.last, TlsStatus::kError);
}

}  // namespace
}  // namespace ringside::tls
