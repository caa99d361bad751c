// Endpoint discovery: file sources (load, change, bad versions keep the last good set,
// the watcher thread), dns: sources through the system resolver, and /clusters output.
#include "ringside/discovery.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace ringside::cluster {
namespace {

class DiscoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/ringside-discovery-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    WorkerQuiescence quiescence;
    quiescence.workers = 1;
    quiescence.epoch = [this](unsigned) { return epoch_; };
    cluster_ = std::make_unique<Cluster>("svc", 1, OutlierPolicy{}, std::move(quiescence));
  }
  void TearDown() override {
    discovery_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Replaces the file atomically, as an orchestrator would.
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path + ".tmp") << text;
    std::rename((path + ".tmp").c_str(), path.c_str());
    return path;
  }

  void make(ServiceConfig config, DiscoveryTuning tuning = {}) {
    config.name = "svc";
    std::vector<Discovery::Service> services{{cluster_.get(), std::move(config)}};
    discovery_ = std::make_unique<Discovery>(std::move(services), tuning);
  }

  static DynamicEndpoints file_source(const std::string& path) {
    DynamicEndpoints source;
    source.kind = EndpointSourceKind::kFile;
    source.text = "file:" + path;
    source.path = path;
    return source;
  }

  static DynamicEndpoints dns_source(const std::string& host, uint16_t port) {
    DynamicEndpoints source;
    source.kind = EndpointSourceKind::kDns;
    source.text = "dns:" + host + ":" + std::to_string(port);
    source.host = host;
    source.port = port;
    return source;
  }

  std::string json() { return cluster_->render_json(0); }

  std::string dir_;
  uint64_t epoch_ = 0;
  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<Discovery> discovery_;
};

TEST_F(DiscoveryTest, StaticAndFileEndpointsMakeOneSet) {
  const std::string path = write("endpoints", "10.0.0.7:15443\n10.0.0.8:15443\n");
  ServiceConfig config;
  config.endpoints.push_back({"10.0.0.9:1", *SocketAddress::parse_numeric("10.0.0.9:1")});
  config.dynamic.push_back(file_source(path));
  make(config);
  EXPECT_TRUE(discovery_->dynamic());
  discovery_->initialize();
  EXPECT_EQ(cluster_->addresses(),
            (std::vector<std::string>{"10.0.0.9:1", "10.0.0.7:15443", "10.0.0.8:15443"}));
  EXPECT_NE(json().find("{\"source\":\"10.0.0.9:1\",\"kind\":\"static\",\"endpoints\":1"),
            std::string::npos)
      << json();
  EXPECT_NE(json().find("\"kind\":\"file\",\"endpoints\":2,\"refreshes\":1,\"failures\":0"),
            std::string::npos)
      << json();

  // A replica leaves, another comes.
  write("endpoints", "10.0.0.8:15443\n10.0.0.10:15443\n");
  discovery_->refresh_now();
  EXPECT_EQ(cluster_->addresses(),
            (std::vector<std::string>{"10.0.0.9:1", "10.0.0.8:15443", "10.0.0.10:15443"}));
}

TEST_F(DiscoveryTest, BadOrEmptyFileKeepsTheLastGoodEndpoints) {
  const std::string path = write("endpoints", "10.0.0.7:15443\n");
  ServiceConfig config;
  config.dynamic.push_back(file_source(path));
  make(config);
  discovery_->initialize();
  const std::vector<std::string> good{"10.0.0.7:15443"};
  EXPECT_EQ(cluster_->addresses(), good);

  write("endpoints", "10.0.0.7:15443\nnot an endpoint\n");
  discovery_->refresh_now();
  EXPECT_EQ(cluster_->addresses(), good);
  EXPECT_NE(
      json().find("\"failures\":1,\"last_error\":\"line 2: 'not an endpoint' is not HOST:PORT\""),
      std::string::npos)
      << json();

  write("endpoints", "# every replica gone?\n");
  discovery_->refresh_now();
  EXPECT_EQ(cluster_->addresses(), good);
  std::filesystem::remove(path);
  discovery_->refresh_now();
  EXPECT_EQ(cluster_->addresses(), good);
  EXPECT_NE(json().find("\"failures\":3"), std::string::npos) << json();
  // A directory where the file was: a read error that says so, not "no endpoint".
  std::filesystem::create_directory(path);
  discovery_->refresh_now();
  EXPECT_EQ(cluster_->addresses(), good);
  EXPECT_NE(json().find("Is a directory"), std::string::npos) << json();
  std::filesystem::remove(path);

  // A good version again clears the error.
  write("endpoints", "10.0.0.8:15443\n");
  discovery_->refresh_now();
  EXPECT_EQ(cluster_->addresses(), (std::vector<std::string>{"10.0.0.8:15443"}));
  EXPECT_NE(json().find("\"refreshes\":2,\"failures\":4,\"last_error\":\"\""), std::string::npos)
      << json();
}

TEST_F(DiscoveryTest, ThreadPicksUpFileChanges) {
  const std::string path = write("endpoints", "10.0.0.7:15443\n");
  ServiceConfig config;
  config.dynamic.push_back(file_source(path));
  DiscoveryTuning tuning;
  tuning.debounce = std::chrono::milliseconds(20);
  tuning.file_poll = std::chrono::milliseconds(200);
  tuning.dns_refresh = std::chrono::milliseconds(200);
  tuning.reclaim_interval = std::chrono::milliseconds(10);
  make(config, tuning);
  discovery_->initialize();
  std::string detail;
  ASSERT_TRUE(discovery_->start(&detail).ok()) << detail;
  write("endpoints", "10.0.0.8:15443\n");
  const std::vector<std::string> changed{"10.0.0.8:15443"};
  // Bounded wait for the thread (inotify, or the stat check): not a timing assertion.
  for (int i = 0; i < 500 && cluster_->addresses() != changed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(cluster_->addresses(), changed);
  // The thread frees what it replaced once the (only) worker has moved on.
  epoch_ += 2;
  for (int i = 0; i < 500 && cluster_->pending() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(cluster_->pending(), 0u);
  discovery_->stop();
}

TEST_F(DiscoveryTest, DnsResolvesEveryAddressAndKeepsTheLastGoodOnFailure) {
  std::vector<SocketAddress> found;
  std::string detail;
  // localhost comes from /etc/hosts through the same getaddrinfo() path as DNS.
  ASSERT_TRUE(resolve_all("localhost", 15443, &found, &detail)) << detail;
  bool v4 = false;
  for (const SocketAddress& a : found) v4 = v4 || a.to_string() == "127.0.0.1:15443";
  EXPECT_TRUE(v4);
  EXPECT_FALSE(resolve_all("no-such-host.invalid", 80, &found, &detail));
  EXPECT_NE(detail.find("cannot resolve 'no-such-host.invalid'"), std::string::npos) << detail;

  ServiceConfig config;
  config.dynamic.push_back(dns_source("localhost", 15443));
  config.dynamic.push_back(dns_source("no-such-host.invalid", 80));
  make(config);
  discovery_->initialize();
  const std::vector<std::string> addresses = cluster_->addresses();
  EXPECT_NE(std::find(addresses.begin(), addresses.end(), "127.0.0.1:15443"), addresses.end());
  EXPECT_NE(json().find("\"source\":\"dns:no-such-host.invalid:80\",\"kind\":\"dns\","
                        "\"endpoints\":0,\"refreshes\":0,\"failures\":1"),
            std::string::npos)
      << json();
  discovery_->refresh_now();
  EXPECT_EQ(cluster_->addresses(), addresses);
  EXPECT_NE(json().find("\"failures\":2"), std::string::npos) << json();
}

TEST_F(DiscoveryTest, StaticOnlyNeedsNoThread) {
  ServiceConfig config;
  config.endpoints.push_back({"10.0.0.9:1", *SocketAddress::parse_numeric("10.0.0.9:1")});
  make(config);
  EXPECT_FALSE(discovery_->dynamic());
  discovery_->initialize();
  std::string detail;
  EXPECT_TRUE(discovery_->start(&detail).ok());
  EXPECT_EQ(cluster_->addresses(), (std::vector<std::string>{"10.0.0.9:1"}));
}

}  // namespace
}  // namespace ringside::cluster
