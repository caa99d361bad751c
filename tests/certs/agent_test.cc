// The rotation agent with each source and each kind of bad input, driven synchronously
// (attempt_now), plus the agent thread picking up file swaps (rename, ..data symlink
// swap) through inotify.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "../tls/tls_test_util.h"
#include "certs/sources.h"
#include "ringside/certs.h"
#include "ringside/rotation.h"

namespace ringside::certs {
namespace {

namespace fs = std::filesystem;
using tls::Identity;
using tls::KeyType;
using tls::testing::make_ca;
using tls::testing::make_leaf;
using tls::testing::now_seconds;

constexpr const char* kService = "app.sample-namespace";

void write_text(const fs::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string serial_of(const Identity& id) {
  std::string detail;
  auto info = tls::inspect_certificate(id.cert_chain_pem, &detail);
  return info.ok() ? info->serial_hex : "";
}

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ringside-agent-XXXXXX";
    dir_ = mkdtemp(tmpl);
    ca_ = make_ca();
    other_ca_ = make_ca(KeyType::kEcdsaP256, "other CA");
    good_ = make_leaf(ca_, {kService});
    write_text(dir_ / "ca.pem", ca_.cert_chain_pem);
    write_text(dir_ / "ca.key", ca_.key_pem);
  }
  void TearDown() override {
    agent_.reset();
    fs::remove_all(dir_);
  }

  WorkerQuiescence quiescence() {
    WorkerQuiescence q;
    q.workers = 2;
    q.epoch = [this](unsigned i) { return epochs_[i].load(); };
    return q;
  }
  void turn_workers() {
    for (auto& e : epochs_) e.fetch_add(1);
  }

  // An agent with one ingress and one egress listener.
  RotationAgent& make_agent(const Config& config, RotationTuning tuning = {}) {
    std::vector<TlsListener> listeners = {
        {"ingress_test", ListenerKind::kIngress, tls::ClientCertMode::kNone, &ingress_},
        {"egress_test", ListenerKind::kEgress, tls::ClientCertMode::kNone, &egress_}};
    agent_ = std::make_unique<RotationAgent>(config, std::move(listeners), 2, quiescence(), tuning);
    return *agent_;
  }

  Config files_config() {
    Config config;
    config.service_name = kService;
    config.cert_path = (dir_ / "cert.pem").string();
    config.key_path = (dir_ / "key.pem").string();
    config.trust_path = (dir_ / "trust.pem").string();
    write_text(config.cert_path, good_.cert_chain_pem);
    write_text(config.key_path, good_.key_pem);
    write_text(config.trust_path, ca_.cert_chain_pem);
    return config;
  }

  std::string served_serial() const { return ingress_.load()->context->cert().serial_hex; }

  fs::path dir_;
  Identity ca_, other_ca_, good_;
  ContextSlot ingress_, egress_;
  std::array<std::atomic<uint64_t>, 2> epochs_{};
  std::unique_ptr<RotationAgent> agent_;
};

TEST_F(AgentTest, FilesInitialGenerationIsPublishedToEveryListener) {
  RotationAgent& agent = make_agent(files_config());
  std::string detail;
  ASSERT_TRUE(agent.initialize(&detail).ok()) << detail;
  ASSERT_NE(ingress_.load(), nullptr);
  ASSERT_NE(egress_.load(), nullptr);
  EXPECT_EQ(ingress_.load()->id, 1u);
  EXPECT_EQ(egress_.load()->id, 1u);
  EXPECT_EQ(served_serial(), serial_of(good_));
  EXPECT_EQ(ingress_.load()->context->workers(), 2u);
  RotationStatus status = agent.status();
  EXPECT_EQ(status.source, "files");
  EXPECT_EQ(status.generation, 1u);
  EXPECT_EQ(status.trust_cas, 1u);
  EXPECT_EQ(status.generations_live, 1u);
  EXPECT_EQ(status.next_renewal, 0);
  std::string json = agent.render_json();
  EXPECT_NE(json.find("\"serial\":\"" + serial_of(good_) + "\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"sans\":[\"app.sample-namespace\"]"), std::string::npos) << json;
  EXPECT_NE(json.find("\"last_error\":null"), std::string::npos) << json;
  std::string prom = agent.render_prometheus();
  EXPECT_NE(prom.find("ringside_tls_generations_live 1\n"), std::string::npos) << prom;
  EXPECT_NE(prom.find("ringside_cert_rotations_total 0\n"), std::string::npos) << prom;
}

TEST_F(AgentTest, NewPairIsPublishedAndOldGenerationReclaimedAfterQuiescence) {
  Config config = files_config();
  RotationAgent& agent = make_agent(config);
  std::string detail;
  ASSERT_TRUE(agent.initialize(&detail).ok()) << detail;
  const TlsGeneration* first = ingress_.load();
  first->hold(0);  // a connection on worker 0 keeps generation 1

  Identity next = make_leaf(ca_, {kService});
  write_text(config.cert_path, next.cert_chain_pem);
  write_text(config.key_path, next.key_pem);
  EXPECT_EQ(agent.attempt_now(false), AttemptResult::kPublished);
  EXPECT_EQ(served_serial(), serial_of(next));
  EXPECT_EQ(ingress_.load()->id, 2u);
  EXPECT_EQ(agent.status().rotations, 1u);
  EXPECT_EQ(agent.status().generations_live, 2u);

  turn_workers();
  turn_workers();
  agent.collect_now();
  EXPECT_EQ(agent.status().generations_live, 2u) << "a connection still holds generation 1";
  first->release(0);
  agent.collect_now();
  EXPECT_EQ(agent.status().generations_live, 1u);

  // The same pair again: a no-op, neither a generation nor a failure.
  EXPECT_EQ(agent.attempt_now(false), AttemptResult::kUnchanged);
  EXPECT_EQ(agent.status().generation, 2u);
  EXPECT_EQ(agent.status().rotations_failed, 0u);
}

struct BadInput {
  const char* name;
  const char* reason;  // part of the logged/recorded reason
};

class BadInputTest : public AgentTest, public ::testing::WithParamInterface<BadInput> {
 protected:
  // Writes the bad material named by the parameter into the cert/key files.
  void write_bad(const Config& config, const std::string& name) {
    Identity bad = good_;
    if (name == "key_mismatch") {
      bad.key_pem = make_leaf(ca_, {kService}).key_pem;
    } else if (name == "expired") {
      bad = make_leaf(ca_, {kService}, KeyType::kEcdsaP256, std::chrono::hours(1),
                      now_seconds() - 7200);
    } else if (name == "not_yet_valid") {
      bad = make_leaf(ca_, {kService}, KeyType::kEcdsaP256, std::chrono::hours(1),
                      now_seconds() + 3600);
    } else if (name == "wrong_san") {
      bad = make_leaf(ca_, {"other.sample-namespace"});
    } else if (name == "other_ca") {
      bad = make_leaf(other_ca_, {kService});
    } else if (name == "garbage") {
      bad.cert_chain_pem =
          "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";
    } else if (name == "encrypted_key") {
      write_text(dir_ / "plain.key", good_.key_pem);
      std::string cmd = "openssl pkcs8 -topk8 -v2 aes-256-cbc -passout pass:secret -in " +
                        (dir_ / "plain.key").string() + " -out " + (dir_ / "enc.key").string() +
                        " 2>/dev/null";
      ASSERT_EQ(std::system(cmd.c_str()), 0);
      std::string detail;
      ASSERT_TRUE(read_whole_file((dir_ / "enc.key").string(), &bad.key_pem, &detail));
      ASSERT_NE(bad.key_pem.find("ENCRYPTED"), std::string::npos);
    } else if (name == "truncated") {
      bad.cert_chain_pem = good_.cert_chain_pem.substr(0, good_.cert_chain_pem.size() / 2);
      bad = Identity{bad.cert_chain_pem, make_leaf(ca_, {kService}).key_pem};
    } else if (name == "empty") {
      bad.cert_chain_pem.clear();
    }
    write_text(config.cert_path, bad.cert_chain_pem);
    write_text(config.key_path, bad.key_pem);
  }
};

TEST_P(BadInputTest, IsNeverPublishedAndIsCountedWithItsReason) {
  Config config = files_config();
  RotationAgent& agent = make_agent(config);
  std::string detail;
  ASSERT_TRUE(agent.initialize(&detail).ok()) << detail;
  const std::string serial = served_serial();
  write_bad(config, GetParam().name);
  EXPECT_EQ(agent.attempt_now(false), AttemptResult::kFailed);
  EXPECT_EQ(served_serial(), serial) << "the old certificate is still served";
  EXPECT_EQ(ingress_.load()->id, 1u);
  RotationStatus status = agent.status();
  EXPECT_EQ(status.rotations_failed, 1u);
  EXPECT_EQ(status.rotations, 0u);
  EXPECT_NE(status.last_error.find(GetParam().reason), std::string::npos) << status.last_error;
  EXPECT_NE(agent.render_json().find("\"reason\":"), std::string::npos);
  // Good material afterwards rotates normally and clears the error.
  Identity next = make_leaf(ca_, {kService});
  write_text(config.cert_path, next.cert_chain_pem);
  write_text(config.key_path, next.key_pem);
  EXPECT_EQ(agent.attempt_now(false), AttemptResult::kPublished);
  EXPECT_EQ(served_serial(), serial_of(next));
  EXPECT_TRUE(agent.status().last_error.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Each, BadInputTest,
    ::testing::Values(BadInput{"key_mismatch", "does not match"}, BadInput{"expired", "expired"},
                      BadInput{"not_yet_valid", "not yet valid"},
                      BadInput{"wrong_san", "app.sample-namespace"},
                      BadInput{"other_ca", "certificate rejected"},
                      BadInput{"garbage", "certificate"}, BadInput{"encrypted_key", "key"},
                      BadInput{"truncated", "certificate"}, BadInput{"empty", "empty"}),
    [](const ::testing::TestParamInfo<BadInput>& param) { return std::string(param.param.name); });

TEST_F(AgentTest, TrustBundleRolloverAndBadBundles) {
  Config config = files_config();
  RotationAgent& agent = make_agent(config);
  std::string detail;
  ASSERT_TRUE(agent.initialize(&detail).ok()) << detail;
  // 1. Add the new CA: a new generation with both.
  write_text(config.trust_path, ca_.cert_chain_pem + other_ca_.cert_chain_pem);
  EXPECT_EQ(agent.attempt_now(false), AttemptResult::kPublished);
  EXPECT_EQ(agent.status().trust_cas, 2u);
  // 2. Move the leaf to the new CA.
  Identity moved = make_leaf(other_ca_, {kService});
  write_text(config.cert_path, moved.cert_chain_pem);
  write_text(config.key_path, moved.key_pem);
  EXPECT_EQ(agent.attempt_now(false), AttemptResult::kPublished);
  EXPECT_EQ(served_serial(), serial_of(moved));
  // 3. Remove the old CA.
  write_text(config.trust_path, other_ca_.cert_chain_pem);
  EXPECT_EQ(agent.attempt_now(false), AttemptResult::kPublished);
  EXPECT_EQ(agent.status().trust_cas, 1u);
  EXPECT_EQ(agent.status().rotations_failed, 0u);
  const uint64_t generation = agent.status().generation;
  // Empty, unparsable, truncated and CA-less bundles never replace it.
  std::string truncated = ca_.cert_chain_pem + other_ca_.cert_chain_pem;
  truncated.resize(truncated.size() - 40);
  for (const std::string& bad : {std::string(), std::string("garbage\n"), truncated,
                                 make_leaf(other_ca_, {kService}).cert_chain_pem}) {
    write_text(config.trust_path, bad);
    EXPECT_EQ(agent.attempt_now(false), AttemptResult::kFailed) << bad;
    EXPECT_EQ(agent.status().generation, generation);
    EXPECT_EQ(agent.status().trust_cas, 1u);
  }
  EXPECT_EQ(agent.status().rotations_failed, 4u);
  // A trust bundle that no longer reaches the leaf is refused too.
  write_text(config.trust_path, ca_.cert_chain_pem);
  EXPECT_EQ(agent.attempt_now(false), AttemptResult::kFailed);
  EXPECT_EQ(agent.status().generation, generation);
}

TEST_F(AgentTest, EmptyTrustBundleFailsStartUp) {
  Config config = files_config();
  write_text(config.trust_path, "");
  RotationAgent& agent = make_agent(config);
  std::string detail;
  EXPECT_FALSE(agent.initialize(&detail).ok());
  EXPECT_NE(detail.find("no PEM certificate"), std::string::npos) << detail;
  EXPECT_EQ(ingress_.load(), nullptr);
}

Config issuer_config(const fs::path& dir) {
  Config config;
  config.service_name = kService;
  config.ca_cert_path = (dir / "ca.pem").string();
  config.ca_key_path = (dir / "ca.key").string();
  config.cert_dir = (dir / "issued").string();
  fs::create_directory(dir / "issued");
  config.cert_lifetime = std::chrono::hours(1);
  config.cert_renew_after = std::chrono::minutes(40);
  return config;
}

TEST_F(AgentTest, LocalIssuerIssuesStoresRenewsAndReusesOnRestart) {
  Config config = issuer_config(dir_);
  RotationAgent& agent = make_agent(config);
  std::string detail;
  ASSERT_TRUE(agent.initialize(&detail).ok()) << detail;
  RotationStatus status = agent.status();
  EXPECT_EQ(status.source, "local-issuer");
  EXPECT_EQ(status.cert.dns_sans, std::vector<std::string>{kService});
  EXPECT_EQ(status.cert.key_type, KeyType::kEcdsaP256);
  EXPECT_NEAR(status.cert.not_after, now_seconds() + 3600, 5);
  // Renewal after 40 minutes, moved earlier by up to 20 % of them (the default jitter).
  EXPECT_LE(status.next_renewal, now_seconds() + 2400 + 2);
  EXPECT_GE(status.next_renewal, now_seconds() + 1920 - 2);
  const std::string first = status.cert.serial_hex;

  // Stored atomically: the key is 0600, the pair matches what is served.
  struct stat st;
  ASSERT_EQ(::stat((dir_ / "issued" / "key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Identity stored;
  ASSERT_TRUE(
      read_whole_file((dir_ / "issued" / "cert.pem").string(), &stored.cert_chain_pem, &detail));
  ASSERT_TRUE(read_whole_file((dir_ / "issued" / "key.pem").string(), &stored.key_pem, &detail));
  EXPECT_EQ(serial_of(stored), first);
  EXPECT_TRUE(
      tls::validate_identity(stored, ca_.cert_chain_pem, kService, now_seconds(), &detail).ok());
  for (const auto& entry : fs::directory_iterator(dir_ / "issued")) {
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << entry.path();
  }

  // A forced renewal (POST /rotate) issues a new certificate with a new key.
  EXPECT_EQ(agent.attempt_now(true), AttemptResult::kPublished);
  const std::string second = agent.status().cert.serial_hex;
  EXPECT_NE(second, first);
  EXPECT_EQ(served_serial(), second);
  ASSERT_TRUE(
      read_whole_file((dir_ / "issued" / "cert.pem").string(), &stored.cert_chain_pem, &detail));
  EXPECT_EQ(serial_of(stored), second);

  // A restart reuses the stored, still-good certificate.
  agent_.reset();
  ContextSlot fresh;
  ingress_.publish(nullptr);
  RotationAgent& restarted = make_agent(config);
  ASSERT_TRUE(restarted.initialize(&detail).ok()) << detail;
  EXPECT_EQ(restarted.status().cert.serial_hex, second);

  // With a renewal window that has already passed, a restart issues a new one.
  agent_.reset();
  config.cert_renew_after = std::chrono::seconds(1);
  config.cert_lifetime = std::chrono::hours(2);  // stored cert has < 2h - 1s left: due
  RotationAgent& due = make_agent(config);
  ASSERT_TRUE(due.initialize(&detail).ok()) << detail;
  EXPECT_NE(due.status().cert.serial_hex, second);
}

TEST_F(AgentTest, LocalIssuerRsaAndUnreadableCaFailsKeepingTheCertificate) {
  Config config = issuer_config(dir_);
  config.key_type = KeyType::kRsa2048;
  RotationAgent& agent = make_agent(config);
  std::string detail;
  ASSERT_TRUE(agent.initialize(&detail).ok()) << detail;
  EXPECT_EQ(agent.status().cert.key_type, KeyType::kRsa2048);
  const std::string serial = served_serial();
  fs::remove(dir_ / "ca.key");
  EXPECT_EQ(agent.attempt_now(true), AttemptResult::kFailed);
  EXPECT_EQ(served_serial(), serial);
  EXPECT_NE(agent.status().last_error.find("--ca-key"), std::string::npos)
      << agent.status().last_error;
}

// No exit (a crash loop under an orchestrator): nothing published, the failure counted
// with its reason, the slots left empty for the workers to refuse connections.
TEST_F(AgentTest, RemoteCaUnreachableStartsWithoutACertificate) {
  Config config;
  config.service_name = kService;
  config.ca_url = "http://127.0.0.1:1/";  // nothing listens on port 1
  RotationAgent& agent = make_agent(config);
  std::string detail;
  ASSERT_TRUE(agent.initialize(&detail).ok()) << detail;
  EXPECT_FALSE(agent.published());
  EXPECT_EQ(ingress_.load(), nullptr);
  EXPECT_EQ(egress_.load(), nullptr);
  auto status = agent.status();
  EXPECT_FALSE(status.has_certificate);
  EXPECT_EQ(status.generation, 0u);
  EXPECT_EQ(status.rotations_failed, 1u);
  EXPECT_NE(status.last_error.find("connect"), std::string::npos) << status.last_error;
  // Still nothing on a retry; a local issuer or files would have failed start-up instead.
  EXPECT_EQ(agent.attempt_now(false), AttemptResult::kFailed);
  EXPECT_FALSE(agent.published());
}

TEST(RenewalTime, FollowsLifetimeOrTheValidityLeft) {
  const auto week = std::chrono::hours(168);
  const auto five_days = std::chrono::hours(120);
  tls::CertInfo cert;
  cert.not_before = 1000 - 300;  // backdated for clock skew
  cert.not_after = 1000 + 7 * 86400;
  // Issued now with the default policy: renewed after 5 days.
  EXPECT_EQ(renewal_time(cert, 1000, week, five_days), 1000 + 5 * 86400);
  // A CA that issues (backdated) one-hour certificates: at 5/7 of what was left.
  cert.not_after = 1000 + 3600;
  EXPECT_NEAR(renewal_time(cert, 1000, week, five_days), 1000 + 3600 * 5 / 7, 1);
  // Longer than the policy: never later than renew_after.
  cert.not_after = 1000 + 30 * 86400;
  EXPECT_EQ(renewal_time(cert, 1000, week, five_days), 1000 + 5 * 86400);
  // Already expired: due now.
  cert.not_after = 900;
  EXPECT_EQ(renewal_time(cert, 1000, week, five_days), 1000);
}

TEST(CfsslResponse, ParsesTheCertificateAndTheRefusal) {
  std::string detail;
  auto cert = parse_cfssl_sign_response(
      R"({"success":true,"result":{"certificate":"-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n"},"errors":[],"messages":[]})",
      &detail);
  ASSERT_TRUE(cert.ok()) << detail;
  EXPECT_EQ(*cert, "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n");
  auto refused = parse_cfssl_sign_response(
      R"({"success":false,"result":null,"errors":[{"code":1003,"message":"Invalid CSR"}],"messages":[]})",
      &detail);
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(detail.find("Invalid CSR"), std::string::npos) << detail;
  EXPECT_FALSE(parse_cfssl_sign_response("<html>", &detail).ok());
  EXPECT_EQ(cfssl_sign_request("-----BEGIN\nA\"\n", "leaf"),
            R"({"certificate_request":"-----BEGIN\nA\"\n","profile":"leaf"})");
}

TEST(HttpUrl, Parses) {
  HttpUrl url;
  std::string detail;
  ASSERT_TRUE(parse_http_url("http://127.0.0.1:8888/?profile=leaf", &url, &detail)) << detail;
  EXPECT_EQ(url.host, "127.0.0.1");
  EXPECT_EQ(url.port, 8888);
  EXPECT_EQ(url.path, "/");
  EXPECT_EQ(url.query, "profile=leaf");
  ASSERT_TRUE(parse_http_url("http://ca.internal", &url, &detail));
  EXPECT_EQ(url.port, 80);
  EXPECT_FALSE(url.https);
  ASSERT_TRUE(parse_http_url("https://ca.internal", &url, &detail));
  EXPECT_TRUE(url.https);
  EXPECT_EQ(url.port, 443);
  EXPECT_FALSE(parse_http_url("ftp://ca.internal", &url, &detail));
  EXPECT_FALSE(parse_http_url("http://ca:99999/", &url, &detail));
}

// cfssl's authsign body, checked against Python's hmac and base64 for the same input.
TEST(CfsslAuthsign, TokenIsTheHmacOfTheRequest) {
  std::string key;
  for (int i = 0; i < 16; ++i) key.push_back(static_cast<char>(i * 0x11));  // 0011..ff
  EXPECT_EQ(cfssl_authsign_request(R"({"certificate_request":"X"})", key),
            R"({"token":"guC1vnIoGVOe0lfnHCU1BekNduFkz7PNy9x98FzCVAc=",)"
            R"("request":"eyJjZXJ0aWZpY2F0ZV9yZXF1ZXN0IjoiWCJ9"})");
}

// The agent thread: a pair replaced by rename, then by a Kubernetes-style ..data
// symlink swap, is served within a second or two; a half-written pair never is.
TEST_F(AgentTest, ThreadPicksUpRenamesAndSymlinkSwaps) {
  // Kubernetes layout: cert.pem -> ..data/cert.pem, ..data -> ..v1
  fs::create_directory(dir_ / "..v1");
  write_text(dir_ / "..v1" / "cert.pem", good_.cert_chain_pem);
  write_text(dir_ / "..v1" / "key.pem", good_.key_pem);
  fs::create_directory_symlink("..v1", dir_ / "..data");
  fs::create_symlink("..data/cert.pem", dir_ / "cert.pem");
  fs::create_symlink("..data/key.pem", dir_ / "key.pem");
  Config config;
  config.service_name = kService;
  config.cert_path = (dir_ / "cert.pem").string();
  config.key_path = (dir_ / "key.pem").string();
  config.trust_path = (dir_ / "ca.pem").string();
  RotationTuning tuning;
  tuning.file_retry = std::chrono::milliseconds(100);
  RotationAgent& agent = make_agent(config, tuning);
  std::string detail;
  ASSERT_TRUE(agent.initialize(&detail).ok()) << detail;
  ASSERT_TRUE(agent.start(&detail).ok()) << detail;

  auto served_within = [&](const std::string& serial, int ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (served_serial() == serial) return true;
      turn_workers();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  };

  // Symlink swap: new ..v2, then ..data renamed over atomically.
  Identity second = make_leaf(ca_, {kService});
  fs::create_directory(dir_ / "..v2");
  write_text(dir_ / "..v2" / "cert.pem", second.cert_chain_pem);
  write_text(dir_ / "..v2" / "key.pem", second.key_pem);
  fs::create_directory_symlink("..v2", dir_ / "..data_tmp");
  fs::rename(dir_ / "..data_tmp", dir_ / "..data");
  EXPECT_TRUE(served_within(serial_of(second), 2000)) << "symlink swap not picked up";

  // Atomic rename of plain files (cert-manager style writers) in another directory.
  fs::path plain = dir_ / "plain";
  fs::create_directory(plain);
  agent_->stop();
  Config renamed = config;
  renamed.cert_path = (plain / "cert.pem").string();
  renamed.key_path = (plain / "key.pem").string();
  write_text(renamed.cert_path, second.cert_chain_pem);
  write_text(renamed.key_path, second.key_pem);
  RotationAgent& agent2 = make_agent(renamed, tuning);
  ASSERT_TRUE(agent2.initialize(&detail).ok()) << detail;
  ASSERT_TRUE(agent2.start(&detail).ok()) << detail;
  Identity third = make_leaf(ca_, {kService});
  write_text(plain / "key.tmp", third.key_pem);
  write_text(plain / "cert.tmp", third.cert_chain_pem);
  fs::rename(plain / "key.tmp", plain / "key.pem");
  fs::rename(plain / "cert.tmp", plain / "cert.pem");
  EXPECT_TRUE(served_within(serial_of(third), 2000)) << "rename not picked up";

  // Half a pair (new cert, old key) is never served, and counted once it persists.
  Identity fourth = make_leaf(ca_, {kService});
  write_text(plain / "cert.tmp", fourth.cert_chain_pem);
  fs::rename(plain / "cert.tmp", plain / "cert.pem");
  EXPECT_FALSE(served_within(serial_of(fourth), 1500));
  EXPECT_EQ(served_serial(), serial_of(third));
  EXPECT_EQ(agent2.status().rotations_failed, 1u);
  // ...and completing the pair publishes it.
  write_text(plain / "key.tmp", fourth.key_pem);
  fs::rename(plain / "key.tmp", plain / "key.pem");
  EXPECT_TRUE(served_within(serial_of(fourth), 2000));
  // Old generations are reclaimed as the (fake) workers turn.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (agent2.status().generations_live != 1 && std::chrono::steady_clock::now() < deadline) {
    turn_workers();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(agent2.status().generations_live, 1u);
}

}  // namespace
}  // namespace ringside::certs
