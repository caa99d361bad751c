#include <gtest/gtest.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ringside/config.h"

namespace ringside {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

class CommandLineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/ringside-config-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    cert_ = write_file("cert.pem", "-----BEGIN CERTIFICATE-----\n");
    key_ = write_file("key.pem", "-----BEGIN PRIVATE KEY-----\n");
    ca_ = write_file("ca.pem", "-----BEGIN CERTIFICATE-----\n");
    cert_dir_ = dir_ + "/issued";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write_file(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  static ParseOutcome parse(std::vector<std::string> args) {
    args.insert(args.begin(), "ringside");
    std::vector<const char*> argv;
    for (const std::string& arg : args) argv.push_back(arg.c_str());
    argv.push_back(nullptr);
    return parse_command_line(static_cast<int>(args.size()), argv.data());
  }

  // The smallest valid command line: one ingress with file certificates.
  std::vector<std::string> minimal() const {
    return {"--service-name", "app.ns", "--ingress", "0.0.0.0:15443=127.0.0.1:8080",
            "--cert",         cert_,    "--key",     key_};
  }

  std::string dir_, cert_, key_, ca_, cert_dir_;
};

TEST_F(CommandLineTest, DesignExample) {
  const ParseOutcome outcome = parse({
      "--service-name", "app.sample-namespace",
      "--ingress",      "0.0.0.0:15443=127.0.0.1:8080,protocol=http",
      "--egress",       "127.0.0.1:15080=orders.sample-namespace,protocol=http",
      "--upstream",     "orders.sample-namespace=10.0.0.7:15443",
      "--upstream",     "orders.sample-namespace=10.0.0.8:15443",
      "--ca-cert",      ca_,
      "--ca-key",       key_,
      "--cert-dir",     cert_dir_,
      "--trust",        ca_,
      "--admin",        "127.0.0.1:9901",
      "--threads",      "0",
  });
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  const Config& c = outcome.config;
  EXPECT_EQ(c.service_name, "app.sample-namespace");
  ASSERT_EQ(c.listeners.size(), 2u);

  const ListenerConfig& ingress = c.listeners[0];
  EXPECT_EQ(ingress.kind, ListenerKind::kIngress);
  EXPECT_EQ(ingress.name, "ingress_0.0.0.0:15443");
  EXPECT_EQ(ingress.listen.to_string(), "0.0.0.0:15443");
  EXPECT_EQ(ingress.target.to_string(), "127.0.0.1:8080");
  EXPECT_EQ(ingress.protocol, Protocol::kHttp);
  EXPECT_EQ(ingress.client_cert, tls::ClientCertMode::kNone);

  const ListenerConfig& egress = c.listeners[1];
  EXPECT_EQ(egress.kind, ListenerKind::kEgress);
  EXPECT_EQ(egress.name, "egress_127.0.0.1:15080");
  EXPECT_EQ(egress.service, "orders.sample-namespace");
  EXPECT_EQ(egress.san, "orders.sample-namespace");
  EXPECT_EQ(egress.sni, "orders.sample-namespace");
  EXPECT_TRUE(egress.tls);
  EXPECT_EQ(egress.protocol, Protocol::kHttp);

  ASSERT_EQ(c.services.count("orders.sample-namespace"), 1u);
  const ServiceConfig& orders = c.services.at("orders.sample-namespace");
  EXPECT_EQ(orders.name, "orders.sample-namespace");
  ASSERT_EQ(orders.endpoints.size(), 2u);
  EXPECT_EQ(orders.endpoints[0].text, "10.0.0.7:15443");
  EXPECT_EQ(orders.endpoints[0].address.to_string(), "10.0.0.7:15443");
  EXPECT_EQ(orders.endpoints[1].address.to_string(), "10.0.0.8:15443");

  EXPECT_EQ(c.ca_cert_path, ca_);
  EXPECT_EQ(c.ca_key_path, key_);
  EXPECT_EQ(c.cert_dir, cert_dir_);
  EXPECT_EQ(c.trust_path, ca_);
  ASSERT_TRUE(c.admin.has_value());
  EXPECT_EQ(c.admin->to_string(), "127.0.0.1:9901");
  EXPECT_EQ(c.threads, 0u);
}

TEST_F(CommandLineTest, Defaults) {
  const ParseOutcome outcome = parse(minimal());
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  const Config& c = outcome.config;
  EXPECT_EQ(c.cert_path, cert_);
  EXPECT_EQ(c.key_path, key_);
  EXPECT_TRUE(c.trust_path.empty());
  EXPECT_EQ(c.key_type, tls::KeyType::kEcdsaP256);
  EXPECT_EQ(c.cert_lifetime, hours(24 * 7));
  EXPECT_EQ(c.cert_renew_after, hours(24 * 5));
  EXPECT_EQ(c.cert_renew_jitter_percent, 20u);
  ASSERT_TRUE(c.admin.has_value());
  EXPECT_EQ(c.admin->to_string(), "127.0.0.1:9901");
  EXPECT_EQ(c.threads, 0u);
  EXPECT_FALSE(c.pin_threads);
  EXPECT_TRUE(c.cpus.empty());
  EXPECT_EQ(c.connect_timeout, seconds(5));
  EXPECT_EQ(c.handshake_timeout, seconds(10));
  EXPECT_EQ(c.tcp_idle_timeout, hours(1));
  EXPECT_EQ(c.drain_timeout, seconds(20));
  EXPECT_EQ(c.max_pending_bytes, 256u * 1024);
  EXPECT_EQ(c.buffer_count, 1024u);
  EXPECT_EQ(c.buffer_size, 16896u);
  EXPECT_EQ(c.max_connections, 0u);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_FALSE(c.tls13_only);
  EXPECT_EQ(c.listeners[0].protocol, Protocol::kTcp);
  EXPECT_EQ(c.dns_refresh, seconds(5));
  EXPECT_EQ(c.outlier.consecutive_connect_failures, 5u);
  EXPECT_EQ(c.outlier.consecutive_5xx, 5u);
  EXPECT_EQ(c.outlier.ejection_time, seconds(30));
  EXPECT_EQ(c.outlier.max_ejection_percent, 50u);
}

TEST_F(CommandLineTest, DynamicUpstreamsAndOutlierFlags) {
  const std::string endpoints =
      write_file("endpoints", "# replicas\n10.0.0.7:15443\n\n  [::1]:15443  # local\r\n");
  std::vector<std::string> args = minimal();
  for (const std::string& arg :
       std::vector<std::string>{"--egress", "127.255.0.1:80=app.ns,tls=off",       //
                                "--upstream", "app.ns=10.0.0.9:15443",             //
                                "--upstream", "app.ns=dns:replicas.app.ns:15443",  //
                                "--upstream", "app.ns=file:" + endpoints,          //
                                "--dns-refresh", "250ms",                          //
                                "--outlier-connect-failures", "3",                 //
                                "--outlier-consecutive-5xx", "0",                  //
                                "--outlier-ejection-time", "2s",                   //
                                "--outlier-max-ejection-percent", "100"}) {
    args.push_back(arg);
  }
  const ParseOutcome outcome = parse(args);
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  const Config& c = outcome.config;
  ASSERT_EQ(c.services.count("app.ns"), 1u);
  const ServiceConfig& service = c.services.at("app.ns");
  ASSERT_EQ(service.endpoints.size(), 1u);
  EXPECT_EQ(service.endpoints[0].address.to_string(), "10.0.0.9:15443");
  ASSERT_EQ(service.dynamic.size(), 2u);
  EXPECT_EQ(service.dynamic[0].kind, EndpointSourceKind::kDns);
  EXPECT_EQ(service.dynamic[0].text, "dns:replicas.app.ns:15443");
  EXPECT_EQ(service.dynamic[0].host, "replicas.app.ns");
  EXPECT_EQ(service.dynamic[0].port, 15443);
  EXPECT_EQ(service.dynamic[1].kind, EndpointSourceKind::kFile);
  EXPECT_EQ(service.dynamic[1].path, endpoints);
  EXPECT_EQ(c.dns_refresh, milliseconds(250));
  EXPECT_EQ(c.outlier.consecutive_connect_failures, 3u);
  EXPECT_EQ(c.outlier.consecutive_5xx, 0u);
  EXPECT_EQ(c.outlier.ejection_time, seconds(2));
  EXPECT_EQ(c.outlier.max_ejection_percent, 100u);

  // A service with only a dynamic source satisfies an egress listener.
  args = {"--egress", "127.0.0.1:15080=orders.ns,tls=off", "--upstream",
          "orders.ns=dns:orders.example:443"};
  EXPECT_EQ(parse(args).action, ParseOutcome::Action::kRun) << parse(args).message;
}

TEST_F(CommandLineTest, BalancingAndGrpcRetryFlags) {
  std::vector<std::string> args = minimal();
  args.insert(
      args.end(),
      {"--egress", "127.255.0.1:80=app.ns,tls=off", "--upstream", "app.ns=10.0.0.9:15443",
       "--upstream", "db.ns=10.0.0.10:5432", "--lb-policy", "app.ns=least-request", "--lb-policy",
       "p2c-ewma", "--grpc-retry-on", "internal,unavailable", "--grpc-per-try-timeout", "250ms"});
  const ParseOutcome outcome = parse(args);
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  const Config& c = outcome.config;
  EXPECT_EQ(c.services.at("app.ns").lb, LbPolicy::kLeastRequest);
  EXPECT_FALSE(c.services.at("db.ns").lb.has_value());  // the default applies
  EXPECT_EQ(c.lb_default, LbPolicy::kP2cEwma);
  EXPECT_EQ(c.http.grpc_retry_on, (1u << 13) | (1u << 14));
  EXPECT_EQ(c.http.grpc_per_try_timeout, milliseconds(250));

  // Health checks of a plaintext service (its only egress has tls=off).
  args = minimal();
  args.insert(
      args.end(),
      {"--egress", "127.255.0.2:80=grpc.ns,tls=off,protocol=grpc", "--upstream",
       "grpc.ns=10.0.0.11:50051", "--health-check", "grpc.ns=grpc:orders.Orders", "--health-check",
       "db.ns=tcp", "--upstream", "db.ns=10.0.0.10:5432", "--health-check-interval", "1s",
       "--health-check-timeout", "500ms", "--health-check-healthy-threshold", "3"});
  const ParseOutcome checks = parse(args);
  ASSERT_EQ(checks.action, ParseOutcome::Action::kRun) << checks.message;
  ASSERT_EQ(checks.config.health_checks.size(), 2u);
  EXPECT_EQ(checks.config.health_checks[0].target, "grpc.ns");
  EXPECT_EQ(checks.config.health_checks[0].kind, HealthCheckConfig::Kind::kGrpc);
  EXPECT_EQ(checks.config.health_checks[0].arg, "orders.Orders");
  EXPECT_EQ(checks.config.health_checks[1].kind, HealthCheckConfig::Kind::kTcp);
  EXPECT_FALSE(checks.config.health_checks[0].tls);

  // A service an egress listener reaches over TLS is checked over TLS, as that listener
  // connects: its sni= and san= for its own service, the name for a routed one.
  args = minimal();
  args.insert(args.end(),
              {"--egress", "127.0.0.1:15080=o.ns,sni=front.o.ns,san=o.ns.mesh", "--trust", ca_,
               "--upstream", "o.ns=10.0.0.1:1", "--health-check", "o.ns=grpc"});
  const ParseOutcome tls_checks = parse(args);
  ASSERT_EQ(tls_checks.action, ParseOutcome::Action::kRun) << tls_checks.message;
  ASSERT_EQ(tls_checks.config.health_checks.size(), 1u);
  EXPECT_TRUE(tls_checks.config.health_checks[0].tls);
  EXPECT_EQ(tls_checks.config.health_checks[0].sni, "front.o.ns");
  EXPECT_EQ(tls_checks.config.health_checks[0].verify_name, "o.ns.mesh");
  EXPECT_EQ(checks.config.health_timing.interval, seconds(1));
  EXPECT_EQ(checks.config.health_timing.timeout, milliseconds(500));
  EXPECT_EQ(checks.config.health_timing.healthy_threshold, 3u);
  EXPECT_EQ(checks.config.health_timing.unhealthy_threshold, 2u);

  // Defaults: UNAVAILABLE only, no per-try limit, no policy set (decided per protocol).
  const ParseOutcome defaults = parse(minimal());
  ASSERT_EQ(defaults.action, ParseOutcome::Action::kRun) << defaults.message;
  EXPECT_EQ(defaults.config.http.grpc_retry_on, 1u << 14);
  EXPECT_EQ(defaults.config.http.grpc_per_try_timeout, milliseconds(0));
  EXPECT_FALSE(defaults.config.lb_default.has_value());
  args = minimal();
  args.insert(args.end(), {"--grpc-retry-on", "none"});
  EXPECT_EQ(parse(args).config.http.grpc_retry_on, 0u);
}

TEST(EndpointFile, ParsesLinesCommentsAndBlankLines) {
  std::vector<SocketAddress> endpoints;
  std::string detail;
  ASSERT_TRUE(parse_endpoint_file("10.0.0.7:15443\n# gone: 10.0.0.8:15443\n\t[::1]:80 \n",
                                  &endpoints, &detail))
      << detail;
  ASSERT_EQ(endpoints.size(), 2u);
  EXPECT_EQ(endpoints[0].to_string(), "10.0.0.7:15443");
  EXPECT_EQ(endpoints[1].to_string(), "[::1]:80");
  // Without a final newline, and with CRLF.
  ASSERT_TRUE(parse_endpoint_file("10.0.0.7:1\r\n10.0.0.8:2", &endpoints, &detail)) << detail;
  EXPECT_EQ(endpoints.size(), 2u);
}

TEST(EndpointFile, RefusesBadLinesAndEmptyFiles) {
  std::vector<SocketAddress> endpoints;
  std::string detail;
  EXPECT_FALSE(parse_endpoint_file("10.0.0.7:15443\n10.0.0.8\n", &endpoints, &detail));
  EXPECT_NE(detail.find("line 2: '10.0.0.8' is not HOST:PORT"), std::string::npos) << detail;
  EXPECT_FALSE(parse_endpoint_file("10.0.0.7:0\n", &endpoints, &detail));
  EXPECT_NE(detail.find("line 1"), std::string::npos) << detail;
  EXPECT_FALSE(parse_endpoint_file("# nothing\n\n", &endpoints, &detail));
  EXPECT_NE(detail.find("no endpoint"), std::string::npos) << detail;
  EXPECT_FALSE(parse_endpoint_file("", &endpoints, &detail));
}

TEST_F(CommandLineTest, HostsPrintsClientAliases) {
  ParseOutcome outcome = parse({"hosts", "--egress", "127.255.0.1:80=app.sample-namespace,tls=off",
                                "--egress", "127.255.0.1:8080=app.sample-namespace,tls=off",
                                "--egress", "127.255.0.2:80=orders.sample-namespace,tls=off",
                                "--egress", "[::1]:80=v6.sample-namespace,tls=off", "--egress",
                                "0.0.0.0:81=any.sample-namespace,tls=off", "--upstream",
                                "app.sample-namespace=10.0.0.7:15443", "--upstream",
                                "orders.sample-namespace=10.0.0.8:15443", "--upstream",
                                "v6.sample-namespace=10.0.0.9:15443", "--upstream",
                                "any.sample-namespace=10.0.0.9:15443"});
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kExit) << outcome.message;
  EXPECT_EQ(outcome.exit_code, 0) << outcome.message;
  EXPECT_EQ(outcome.message,
            "# ringside client aliases (egress listeners)\n"
            "# egress_0.0.0.0:81 (any.sample-namespace) listens on every address: no alias line\n"
            "127.255.0.1 app.sample-namespace\n"
            "127.255.0.2 orders.sample-namespace\n"
            "::1 v6.sample-namespace\n");

  // Two services on one alias address share its line; ingress listeners have none.
  std::vector<std::string> args = {"hosts"};
  for (const std::string& arg : minimal()) args.push_back(arg);
  for (const char* arg :
       {"--egress", "127.255.0.1:80=a.ns,tls=off", "--egress", "127.255.0.1:81=b.ns,tls=off",
        "--upstream", "a.ns=10.0.0.1:1", "--upstream", "b.ns=10.0.0.1:1"}) {
    args.push_back(arg);
  }
  outcome = parse(args);
  EXPECT_EQ(outcome.exit_code, 0) << outcome.message;
  EXPECT_EQ(outcome.message,
            "# ringside client aliases (egress listeners)\n127.255.0.1 a.ns b.ns\n");

  // Route hosts resolve to the first HTTP egress listener's alias, after its services;
  // a name given twice, or already a service, is listed once; a wildcard cannot be.
  outcome = parse({"hosts",
                   "--egress",
                   "0.0.0.0:81=any.ns,tls=off,protocol=http",
                   "--egress",
                   "127.255.0.1:80=tcp.ns,tls=off",
                   "--egress",
                   "127.255.0.2:80=app.ns,tls=off,protocol=http",
                   "--egress",
                   "127.255.0.3:80=web.ns,tls=off,protocol=http",
                   "--route",
                   "orders.ns/v2=orders.ns",
                   "--route",
                   "orders.ns/v3=orders.ns",
                   "--route",
                   "web.ns/admin=admin.ns",
                   "--route",
                   "*.example.com=admin.ns",
                   "--route",
                   "pay.ns=orders.ns",
                   "--upstream",
                   "any.ns=10.0.0.1:1",
                   "--upstream",
                   "tcp.ns=10.0.0.1:1",
                   "--upstream",
                   "app.ns=10.0.0.1:1",
                   "--upstream",
                   "web.ns=10.0.0.1:1",
                   "--upstream",
                   "orders.ns=10.0.0.2:1",
                   "--upstream",
                   "admin.ns=10.0.0.3:1"});
  EXPECT_EQ(outcome.exit_code, 0) << outcome.message;
  EXPECT_EQ(outcome.message,
            "# ringside client aliases (egress listeners)\n"
            "# egress_0.0.0.0:81 (any.ns) listens on every address: no alias line\n"
            "# --route *.example.com/=admin.ns: a wildcard host has no alias line\n"
            "127.255.0.1 tcp.ns\n"
            "127.255.0.2 app.ns orders.ns pay.ns\n"
            "127.255.0.3 web.ns\n");

  // The same checks as a run: a bad flag is still exit 2, naming it.
  outcome = parse({"hosts", "--egress", "127.255.0.1:80=app.ns,tls=off"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.message.find("no --upstream for service 'app.ns'"), std::string::npos)
      << outcome.message;
  // "hosts" anywhere but first is a stray word, as before.
  outcome = parse({"--admin", "off", "hosts"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.message.find("unexpected argument 'hosts'"), std::string::npos);
}

TEST_F(CommandLineTest, EveryTunable) {
  std::vector<std::string> args = minimal();
  for (const char* arg : {"--threads",
                          "2",
                          "--pin-threads",
                          "--connect-timeout",
                          "250ms",
                          "--handshake-timeout",
                          "3s",
                          "--idle-timeout",
                          "0",
                          "--drain-timeout",
                          "1m",
                          "--max-pending-bytes",
                          "1m",
                          "--buffers",
                          "256",
                          "--buffer-size",
                          "32k",
                          "--max-connections",
                          "10000",
                          "--tls13-only",
                          "--log-level",
                          "debug",
                          "--admin",
                          "off",
                          "--key-type",
                          "rsa-2048",
                          "--cert-lifetime",
                          "2h",
                          "--cert-renew-after",
                          "90m"}) {
    args.push_back(arg);
  }
  const ParseOutcome outcome = parse(args);
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  const Config& c = outcome.config;
  EXPECT_EQ(c.threads, 2u);
  EXPECT_TRUE(c.pin_threads);
  EXPECT_EQ(c.connect_timeout, milliseconds(250));
  EXPECT_EQ(c.handshake_timeout, seconds(3));
  EXPECT_EQ(c.tcp_idle_timeout, Duration(0));
  EXPECT_EQ(c.drain_timeout, seconds(60));
  EXPECT_EQ(c.max_pending_bytes, 1u << 20);
  EXPECT_EQ(c.buffer_count, 256u);
  EXPECT_EQ(c.buffer_size, 32768u);
  EXPECT_EQ(c.max_connections, 10000u);
  EXPECT_TRUE(c.tls13_only);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_FALSE(c.admin.has_value());
  EXPECT_EQ(c.key_type, tls::KeyType::kRsa2048);
  EXPECT_EQ(c.cert_lifetime, hours(2));
  EXPECT_EQ(c.cert_renew_after, std::chrono::minutes(90));
}

TEST_F(CommandLineTest, ListenerKeys) {
  std::vector<std::string> args = minimal();
  args[3] = "127.0.0.1:15443=localhost:8080,client-cert=require,protocol=tcp";
  for (const char* arg :
       {"--trust", ca_.c_str(), "--egress",
        "127.0.0.1:15080=orders.ns,san=orders.internal,sni=orders.sni,protocol=tcp", "--egress",
        "[::1]:15081=plain.ns,tls=off", "--upstream", "orders.ns=localhost:15443", "--upstream",
        "plain.ns=[::1]:9000"}) {
    args.push_back(arg);
  }
  const ParseOutcome outcome = parse(args);
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  const Config& c = outcome.config;
  ASSERT_EQ(c.listeners.size(), 3u);
  EXPECT_EQ(c.listeners[0].client_cert, tls::ClientCertMode::kRequire);
  EXPECT_EQ(c.listeners[0].target.to_string(), "127.0.0.1:8080");  // localhost resolved
  EXPECT_EQ(c.listeners[1].san, "orders.internal");
  EXPECT_EQ(c.listeners[1].sni, "orders.sni");
  EXPECT_EQ(c.listeners[2].name, "egress_[::1]:15081");
  EXPECT_FALSE(c.listeners[2].tls);
  EXPECT_EQ(c.listeners[2].san, "plain.ns");
  EXPECT_EQ(c.services.at("orders.ns").endpoints[0].address.to_string(), "127.0.0.1:15443");
  EXPECT_EQ(c.services.at("orders.ns").endpoints[0].text, "localhost:15443");
  EXPECT_EQ(c.services.at("plain.ns").endpoints[0].address.to_string(), "[::1]:9000");
}

TEST_F(CommandLineTest, AlpnKeyAndProtocolDefaults) {
  std::vector<std::string> args = minimal();
  args[3] = "127.0.0.1:15443=127.0.0.1:8080,protocol=tcp,alpn=h2:http/1.1";
  for (const char* arg :
       {"--trust", ca_.c_str(), "--ingress", "127.0.0.1:15444=127.0.0.1:8081,protocol=http",
        "--ingress", "127.0.0.1:15445=127.0.0.1:8082", "--egress",
        "127.0.0.1:15080=orders.ns,alpn=h2", "--egress", "127.0.0.1:15081=orders.ns,protocol=http",
        "--egress", "127.0.0.1:15082=orders.ns,tls=off", "--upstream",
        "orders.ns=127.0.0.1:9000"}) {
    args.push_back(arg);
  }
  const ParseOutcome outcome = parse(args);
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  const Config& c = outcome.config;
  ASSERT_EQ(c.listeners.size(), 6u);
  using Ids = std::vector<std::string>;
  EXPECT_EQ(c.listeners[0].alpn, (Ids{"h2", "http/1.1"}));  // in the order given
  EXPECT_EQ(c.listeners[1].alpn, (Ids{"h2", "http/1.1"}));  // protocol=http ingress: both
  EXPECT_TRUE(c.listeners[2].alpn.empty());                 // tcp: no ALPN unless asked
  EXPECT_EQ(c.listeners[3].alpn, Ids{"h2"});
  EXPECT_EQ(c.listeners[4].alpn, (Ids{"h2", "http/1.1"}));  // an HTTP egress offers both
  EXPECT_TRUE(c.listeners[5].alpn.empty());
}

TEST_F(CommandLineTest, Http2FlagDefaults) {
  const ParseOutcome outcome = parse(minimal());
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  const http2::Settings& h2 = outcome.config.http2;
  EXPECT_EQ(h2.max_concurrent_streams, 100u);
  EXPECT_EQ(h2.initial_stream_window, 65536u);
  EXPECT_EQ(h2.initial_connection_window, 1024u * 1024);
  EXPECT_EQ(h2.max_header_list, 61440u);
  EXPECT_EQ(h2.max_headers, 100u);
}

TEST_F(CommandLineTest, Http2Flags) {
  std::vector<std::string> args = minimal();
  for (const char* arg : {"--h2-max-concurrent-streams", "2147483647", "--h2-initial-stream-window",
                          "65535", "--h2-initial-connection-window", "2147483647",
                          "--h2-max-header-list", "1m", "--h2-max-headers", "1"}) {
    args.push_back(arg);
  }
  const ParseOutcome outcome = parse(args);
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  const http2::Settings& h2 = outcome.config.http2;
  EXPECT_EQ(h2.max_concurrent_streams, 2147483647u);
  EXPECT_EQ(h2.initial_stream_window, 65535u);
  EXPECT_EQ(h2.initial_connection_window, 2147483647u);
  EXPECT_EQ(h2.max_header_list, 1024u * 1024);
  EXPECT_EQ(h2.max_headers, 1u);
}

TEST_F(CommandLineTest, EgressH2Key) {
  std::vector<std::string> args = {"--egress",   "127.0.0.1:15080=orders.ns,protocol=http,h2=off",
                                   "--upstream", "orders.ns=127.0.0.1:9000",
                                   "--trust",    ca_};
  ParseOutcome outcome = parse(args);
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  EXPECT_FALSE(outcome.config.listeners[0].h2);
  EXPECT_EQ(outcome.config.listeners[0].alpn, std::vector<std::string>{"http/1.1"});
  args[1] = "127.0.0.1:15080=orders.ns,h2=off";
  outcome = parse(args);
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_EQ(outcome.message,
            "ringside: --egress '127.0.0.1:15080=orders.ns,h2=off': h2=off applies to the HTTP "
            "protocols (protocol=http|http2|grpc)");
  args[1] = "127.0.0.1:15080=orders.ns,protocol=http,h2=maybe";
  outcome = parse(args);
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.message.find("h2 'maybe' is not on or off"), std::string::npos);
}

TEST_F(CommandLineTest, Http2ProtocolsAreHttpListenersOfferingH2) {
  for (const char* protocol : {"http2", "grpc"}) {
    std::vector<std::string> args = minimal();
    args[3] = std::string("0.0.0.0:15443=127.0.0.1:8080,protocol=") + protocol;
    args.insert(args.end(),
                {"--egress", std::string("127.0.0.1:15080=orders.ns,protocol=") + protocol,
                 "--upstream", "orders.ns=127.0.0.1:9000", "--trust", ca_});
    ParseOutcome outcome = parse(args);
    ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
    ASSERT_EQ(outcome.config.listeners.size(), 2u);
    for (const ListenerConfig& listener : outcome.config.listeners) {
      EXPECT_EQ(to_string(listener.protocol), protocol);
      EXPECT_EQ(listener.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
    }
    // An alpn= key is for protocol=tcp only: these negotiate their own.
    args[3] += ",alpn=h2";
    outcome = parse(args);
    EXPECT_EQ(outcome.exit_code, 2);
    EXPECT_NE(outcome.message.find("alpn applies to protocol=tcp listeners"), std::string::npos)
        << outcome.message;
  }
}

TEST_F(CommandLineTest, HttpDefaults) {
  const ParseOutcome outcome = parse(minimal());
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  const http::HttpConfig& h = outcome.config.http;
  EXPECT_EQ(h.retries, 2u);
  EXPECT_EQ(h.request_timeout, seconds(15));
  EXPECT_EQ(h.idle_timeout, seconds(300));
  EXPECT_EQ(h.request_header_timeout, seconds(10));
  EXPECT_TRUE(h.headers.request_id);
  EXPECT_TRUE(h.headers.forwarded);
  EXPECT_TRUE(h.headers.server);
  EXPECT_TRUE(h.headers.upstream_service_time);
  EXPECT_TRUE(h.routes.empty());
  EXPECT_EQ(h.access_log, "");
  EXPECT_EQ(h.access_log_format, http::AccessLogFormat::kText);
  EXPECT_FALSE(h.log_query);
}

TEST_F(CommandLineTest, HttpFlags) {
  std::vector<std::string> args = minimal();
  const std::string log = dir_ + "/access.log";
  const std::vector<std::string> extra = {"--trust",
                                          ca_,
                                          "--egress",
                                          "127.0.0.1:15080=orders.ns,protocol=http",  //
                                          "--upstream",
                                          "orders.ns=127.0.0.1:15443",
                                          "--upstream",
                                          "billing.ns=127.0.0.1:15444",
                                          "--route",
                                          "Billing.NS/api=billing.ns",
                                          "--route",
                                          "*.ns=orders.ns,retries=0",  //
                                          "--retries",
                                          "5",
                                          "--request-timeout",
                                          "0",
                                          "--http-idle-timeout",
                                          "1m",  //
                                          "--request-header-timeout",
                                          "500ms",
                                          "--no-request-id",
                                          "--no-forwarded-headers",
                                          "--no-server-header",
                                          "--no-upstream-service-time",
                                          "--access-log",
                                          log,  //
                                          "--access-log-format",
                                          "json",
                                          "--log-query"};
  args.insert(args.end(), extra.begin(), extra.end());
  const ParseOutcome outcome = parse(args);
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  const http::HttpConfig& h = outcome.config.http;
  EXPECT_EQ(h.retries, 5u);
  EXPECT_EQ(h.request_timeout, Duration(0));
  EXPECT_EQ(h.idle_timeout, seconds(60));
  EXPECT_EQ(h.request_header_timeout, milliseconds(500));
  EXPECT_FALSE(h.headers.request_id);
  EXPECT_FALSE(h.headers.forwarded);
  EXPECT_FALSE(h.headers.server);
  EXPECT_FALSE(h.headers.upstream_service_time);
  ASSERT_EQ(h.routes.size(), 2u);
  EXPECT_EQ(h.routes[0].host, "billing.ns");
  EXPECT_EQ(h.routes[0].path_prefix, "/api");
  EXPECT_EQ(h.routes[0].service, "billing.ns");
  EXPECT_FALSE(h.routes[0].retries.has_value());
  EXPECT_EQ(h.routes[1].host, "*.ns");
  EXPECT_EQ(h.routes[1].path_prefix, "/");
  EXPECT_EQ(h.routes[1].retries, 0u);
  EXPECT_EQ(h.access_log, log);
  EXPECT_EQ(h.access_log_format, http::AccessLogFormat::kJson);
  EXPECT_TRUE(h.log_query);
}

TEST_F(CommandLineTest, HttpErrors) {
  const std::vector<std::string> http_egress = {"--egress",
                                                "127.0.0.1:15080=orders.ns,protocol=http,tls=off",
                                                "--upstream", "orders.ns=127.0.0.1:1"};
  struct Case {
    std::vector<std::string> extra;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--route", "orders.ns"}, "--route 'orders.ns': expected HOST[/PREFIX]=SERVICE"},
      {{"--route", "a b=orders.ns"}, "--route 'a b=orders.ns': host 'a b' is not a DNS name"},
      {{"--route", "a.ns=x y"}, "--route 'a.ns=x y': service 'x y' is not a service name"},
      {{"--route", "a.ns=billing.ns"},
       "--route 'a.ns=billing.ns': no --upstream for service "
       "'billing.ns'"},
      {{"--route", "a.ns=orders.ns,retries=11"}, "retries '11' is not 0 to 10"},
      {{"--route", "a.ns=orders.ns,retries=x"}, "retries 'x' is not 0 to 10"},
      {{"--route", "a.ns=orders.ns,weight=1"}, "unknown key 'weight' (route keys: retries)"},
      {{"--route", "A.ns/x=orders.ns", "--route", "a.ns/x=orders.ns"},
       "--route 'a.ns/x=orders.ns': a route for a.ns/x is already given"},
      {{"--retries", "11"}, "--retries '11': out of range (0 to 10)"},
      {{"--request-timeout", "soon"}, "--request-timeout: 'soon' is not a duration"},
      {{"--http-idle-timeout", "-1s"}, "--http-idle-timeout: '-1s' is negative"},
      {{"--request-header-timeout", "1y"}, "--request-header-timeout: '1y': unknown unit"},
      {{"--access-log", dir_}, "--access-log '" + dir_ + "': is a directory"},
      {{"--access-log", cert_ + "/x.log"},
       "--access-log '" + cert_ + "/x.log': does not exist and cannot be created"},
      {{"--access-log", ""}, "--access-log '': give a file path or -"},
      {{"--access-log-format", "xml"}, "--access-log-format 'xml': not text or json"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = minimal();
    args.insert(args.end(), http_egress.begin(), http_egress.end());
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    const ParseOutcome outcome = parse(args);
    EXPECT_EQ(outcome.exit_code, 2) << c.message;
    EXPECT_NE(outcome.message.find(c.message), std::string::npos)
        << "expected: " << c.message << "\n  got:      " << outcome.message;
  }
  // Routes need an HTTP egress listener to apply to.
  std::vector<std::string> args = minimal();
  for (const char* arg : {"--egress", "127.0.0.1:15080=orders.ns,tls=off", "--upstream",
                          "orders.ns=127.0.0.1:1", "--route", "a.ns=orders.ns"}) {
    args.push_back(arg);
  }
  const ParseOutcome outcome = parse(args);
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.message.find("routes apply to --egress listeners with protocol=http"),
            std::string::npos)
      << outcome.message;
  // "-" is stdout, accepted without a file.
  args = minimal();
  args.push_back("--access-log");
  args.push_back("-");
  EXPECT_EQ(parse(args).config.http.access_log, "-");
}

TEST_F(CommandLineTest, TrustedDownstreams) {
  auto with = [this](std::vector<std::string> extra, bool http_ingress = true) {
    std::vector<std::string> args = {"--service-name",
                                     "app.ns",
                                     "--cert",
                                     cert_,
                                     "--key",
                                     key_,
                                     "--ingress",
                                     http_ingress ? "0.0.0.0:15443=127.0.0.1:8080,protocol=http"
                                                  : "0.0.0.0:15443=127.0.0.1:8080"};
    args.insert(args.end(), extra.begin(), extra.end());
    return parse(args);
  };
  ParseOutcome outcome =
      with({"--trusted-downstream", "10.0.0.0/16,fd00::/8", "--trusted-downstream", "192.0.2.7"});
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  const auto& ranges = outcome.config.http.trusted_downstreams;
  ASSERT_EQ(ranges.size(), 3u);
  EXPECT_EQ(ranges[0].prefix, 16);
  EXPECT_EQ(ranges[1].family, AF_INET6);
  EXPECT_EQ(ranges[2].prefix, 32);
  EXPECT_TRUE(with({}).config.http.trusted_downstreams.empty());

  struct Case {
    std::vector<std::string> extra;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{"--trusted-downstream", "alb.internal"},
            "--trusted-downstream 'alb.internal': 'alb.internal' is not a numeric IPv4 or IPv6 "
            "address"},
           {{"--trusted-downstream", "10.0.0.1/8"},
            "--trusted-downstream '10.0.0.1/8': address has bits set beyond the /8 prefix"},
           {{"--trusted-downstream", "10.0.0.0/40"}, "prefix length is not a number in 0-32"},
       }) {
    outcome = with(c.extra);
    EXPECT_EQ(outcome.exit_code, 2) << c.message;
    EXPECT_NE(outcome.message.find(c.message), std::string::npos)
        << "expected: " << c.message << "\n  got:      " << outcome.message;
  }
  outcome = with({"--trusted-downstream", "10.0.0.0/8"}, false);
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.message.find("applies to --ingress listeners with protocol=http"),
            std::string::npos)
      << outcome.message;
}

TEST_F(CommandLineTest, EgressOnlyNeedsNoCertificateOrServiceName) {
  const ParseOutcome outcome = parse({"--egress", "127.0.0.1:15080=orders.ns,tls=off", "--upstream",
                                      "orders.ns=127.0.0.1:9000", "--admin", "[::1]:0"});
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  EXPECT_EQ(outcome.config.admin->to_string(), "[::1]:0");
}

TEST_F(CommandLineTest, CpusImplyPinningAndThreadCount) {
  cpu_set_t allowed;
  ASSERT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  int first = 0;
  while (!CPU_ISSET(first, &allowed)) ++first;
  std::vector<std::string> args = minimal();
  args.push_back("--cpus");
  args.push_back(std::to_string(first) + "-" + std::to_string(first));
  const ParseOutcome outcome = parse(args);
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  EXPECT_EQ(outcome.config.cpus, std::vector<int>{first});
  EXPECT_TRUE(outcome.config.pin_threads);
  EXPECT_EQ(outcome.config.threads, 1u);
}

TEST_F(CommandLineTest, RemoteAdminNeedsExplicitFlag) {
  std::vector<std::string> args = minimal();
  args.push_back("--admin");
  args.push_back("0.0.0.0:9901");
  ParseOutcome outcome = parse(args);
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.message.find("not a loopback address"), std::string::npos);
  args.push_back("--admin-allow-remote");
  outcome = parse(args);
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  EXPECT_EQ(outcome.config.admin->to_string(), "0.0.0.0:9901");
}

TEST_F(CommandLineTest, Help) {
  const ParseOutcome outcome = parse({"--help"});
  EXPECT_EQ(outcome.action, ParseOutcome::Action::kExit);
  EXPECT_EQ(outcome.exit_code, 0);
  for (const char* expected : {"Usage: ringside",
                               "Service and listeners",
                               "Upstreams",
                               "Certificates",
                               "Timeouts",
                               "Performance",
                               "Admin",
                               "Logging",
                               "--ingress",
                               "--egress",
                               "--upstream",
                               "ringside hosts",
                               "--dns-refresh DURATION (=5s)",
                               "--outlier-ejection-time DURATION (=30s)",
                               "--outlier-max-ejection-percent N (=50)",
                               "--cert-lifetime",
                               "(=7d)",
                               "(=5d)",
                               "(=5s)",
                               "(=10s)",
                               "(=1h)",
                               "(=20s)",
                               "(=256k)",
                               "(=1024)",
                               "(=16896)",
                               "(=127.0.0.1:9901)",
                               "(=info)",
                               "--config",
                               "--version",
                               "--tls13-only",
                               "--admin-allow-remote",
                               "HTTP (listeners with protocol=http)",
                               "--route",
                               "(=2)",
                               "(=15s)",
                               "(=5m)",
                               "--no-request-id",
                               "--access-log-format FORMAT (=text)",
                               "HTTP/2 (both sides of the HTTP listeners",
                               "--h2-max-concurrent-streams N (=100)",
                               "--h2-initial-stream-window N (=64k)",
                               "--h2-initial-connection-window N (=1m)",
                               "--h2-max-header-list N (=60k)",
                               "--h2-max-headers N (=100)",
                               "alpn=ID[:ID...]"}) {
    EXPECT_NE(outcome.message.find(expected), std::string::npos) << expected;
  }
  EXPECT_EQ(outcome.message.find("positional"), std::string::npos) << "internal option shown";
  // The short form.
  EXPECT_EQ(parse({"-h"}).exit_code, 0);
}

TEST_F(CommandLineTest, Version) {
  const ParseOutcome outcome = parse({"--version"});
  EXPECT_EQ(outcome.action, ParseOutcome::Action::kExit);
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_EQ(outcome.message.rfind("ringside 0.", 0), 0u) << outcome.message;
  EXPECT_NE(outcome.message.find("wolfSSL 5."), std::string::npos) << outcome.message;
}

TEST_F(CommandLineTest, ConfigFile) {
  const std::string file = write_file("ringside.ini",
                                      "# a comment\n"
                                      "service-name = app.ns\n"
                                      "ingress = 0.0.0.0:15443=127.0.0.1:8080,protocol=http\n"
                                      "egress = 127.0.0.1:15080=orders.ns\n"
                                      "egress = 127.0.0.1:15081=users.ns\n"
                                      "upstream = orders.ns=10.0.0.7:15443\n"
                                      "upstream = users.ns=10.0.0.9:15443\n"
                                      "cert = " +
                                          cert_ +
                                          "\n"
                                          "key = " +
                                          key_ +
                                          "\n"
                                          "trust = " +
                                          ca_ +
                                          "\n"
                                          "threads = 3\n"
                                          "idle-timeout = 10m\n"
                                          "tls13-only = true\n");
  ParseOutcome outcome = parse({"--config", file});
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  EXPECT_EQ(outcome.config.service_name, "app.ns");
  EXPECT_EQ(outcome.config.listeners.size(), 3u);
  EXPECT_EQ(outcome.config.listeners[0].protocol, Protocol::kHttp);
  EXPECT_EQ(outcome.config.services.size(), 2u);
  EXPECT_EQ(outcome.config.threads, 3u);
  EXPECT_EQ(outcome.config.tcp_idle_timeout, std::chrono::minutes(10));
  EXPECT_TRUE(outcome.config.tls13_only);
  EXPECT_EQ(outcome.config.connect_timeout, seconds(5));  // default where the file is silent

  // Flags override the file: a scalar replaces the file's value, a repeatable flag
  // replaces all of the file's values for it.
  outcome = parse({"--threads", "1", "--config", file, "--egress", "127.0.0.1:15082=orders.ns"});
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  EXPECT_EQ(outcome.config.threads, 1u);
  ASSERT_EQ(outcome.config.listeners.size(), 2u);
  EXPECT_EQ(outcome.config.listeners[1].name, "egress_127.0.0.1:15082");
  EXPECT_EQ(outcome.config.listeners[0].name, "ingress_0.0.0.0:15443");  // from the file
}

TEST_F(CommandLineTest, ConfigFilePathsAreRelativeToTheFile) {
  // The file in a folder of its own, with the certificates next to it under relative
  // names; the current directory is elsewhere.
  const std::string folder = dir_ + "/etc";
  ASSERT_EQ(::mkdir(folder.c_str(), 0755), 0);
  ASSERT_EQ(::symlink(cert_.c_str(), (folder + "/cert.pem").c_str()), 0);
  ASSERT_EQ(::symlink(key_.c_str(), (folder + "/key.pem").c_str()), 0);
  const std::string endpoints = folder + "/endpoints";
  { std::ofstream(endpoints) << "10.0.0.7:15443\n"; }
  const std::string file = folder + "/ringside.ini";
  {
    std::ofstream(file) << "service-name = app.ns\n"
                           "ingress = 0.0.0.0:15443=127.0.0.1:8080,protocol=http\n"
                           "cert = cert.pem\nkey = ./key.pem\n"
                           "egress = 127.0.0.1:15080=orders.ns,tls=off\n"
                           "upstream = orders.ns=file:endpoints\n"
                           "access-log = logs/../access.log\n";
  }
  const ParseOutcome outcome = parse({"--config", file});
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  EXPECT_EQ(outcome.config.cert_path, folder + "/cert.pem");
  EXPECT_EQ(outcome.config.key_path, folder + "/key.pem");
  EXPECT_EQ(outcome.config.http.access_log, folder + "/access.log");
  ASSERT_EQ(outcome.config.services.at("orders.ns").dynamic.size(), 1u);
  EXPECT_EQ(outcome.config.services.at("orders.ns").dynamic[0].path, endpoints);
  // On the command line, paths stay relative to the current directory.
  const ParseOutcome flags = parse({"--config", file, "--access-log", "here.log"});
  EXPECT_EQ(flags.config.http.access_log, "here.log");
}

TEST_F(CommandLineTest, ConfigFileErrors) {
  const std::string unknown = write_file("unknown.ini", "service-name = a\nbogus = 1\n");
  ParseOutcome outcome = parse({"--config", unknown});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.message.find("--config '" + unknown + "': unknown key 'bogus'"),
            std::string::npos)
      << outcome.message;

  const std::string twice = write_file("twice.ini", "threads = 1\nthreads = 2\n");
  outcome = parse({"--config", twice});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.message.find("threads given more than once"), std::string::npos)
      << outcome.message;

  const std::string nested = write_file("nested.ini", "config = other.ini\n");
  outcome = parse({"--config", nested});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.message.find("unknown key 'config'"), std::string::npos) << outcome.message;

  outcome = parse({"--config", dir_ + "/missing.ini"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.message.find("missing.ini': cannot read"), std::string::npos)
      << outcome.message;

  // What Boost would misread is said plainly, with the line.
  const std::string section = write_file("section.ini", "# sidecar\n[ingress]\nthreads = 1\n");
  outcome = parse({"--config", section});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.message.find("line 2: '[ingress]': sections are not used; write every key "
                                 "at the top level"),
            std::string::npos)
      << outcome.message;
  const std::string bare = write_file("bare.ini", "threads = 1\n  tls13-only  # TLS 1.3\n");
  outcome = parse({"--config", bare});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.message.find("line 2: 'tls13-only' has no value; write 'tls13-only = VALUE' "
                                 "(a switch: 'tls13-only = true')"),
            std::string::npos)
      << outcome.message;

  // A bad value from the file is reported under the flag's name.
  const std::string bad = write_file("bad.ini", "connect-timeout = soon\n");
  std::vector<std::string> args = minimal();
  args.push_back("--config");
  args.push_back(bad);
  outcome = parse(args);
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.message.find("--connect-timeout: 'soon' is not a duration"), std::string::npos)
      << outcome.message;
}

TEST_F(CommandLineTest, AuthzAllowListRulesAndAuditMode) {
  const ParseOutcome outcome = parse({
      "--service-name",
      "app.ns",
      "--cert",
      cert_,
      "--key",
      key_,
      "--trust",
      ca_,
      "--ingress",
      "0.0.0.0:15443=127.0.0.1:8080,protocol=http,client-cert=require,"
      "allow=orders.ns|*.ops|spiffe://td/ns/prod/*,authz=audit",
      "--ingress",
      "0.0.0.0:15444=127.0.0.1:8081,client-cert=require,allow=spiffe://td/sa/x",
      "--authz-rule",
      "0.0.0.0:15443,path=/admin,method=POST|DELETE,allow=*.ops",
      "--authz-rule",
      "ingress_0.0.0.0:15443,host=api.ns,allow=*",
      "--no-forwarded-client-cert",
  });
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  const Config& c = outcome.config;
  const authz::ListenerPolicy& http = c.listeners[0].authz;
  EXPECT_TRUE(http.has_allow);
  EXPECT_EQ(http.mode, authz::Mode::kAudit);
  ASSERT_EQ(http.allow.size(), 3u);
  EXPECT_EQ(http.allow[1].kind, authz::IdentityPattern::Kind::kDnsWildcard);
  EXPECT_EQ(http.allow[2].kind, authz::IdentityPattern::Kind::kUriPrefix);
  ASSERT_EQ(http.rules.size(), 2u);
  EXPECT_EQ(http.rules[0].path_prefix, "/admin");
  EXPECT_EQ(http.rules[0].methods, (std::vector<std::string>{"POST", "DELETE"}));
  EXPECT_EQ(http.rules[1].host, "api.ns");
  EXPECT_EQ(c.listeners[1].authz.mode, authz::Mode::kEnforce);
  EXPECT_TRUE(c.listeners[1].authz.rules.empty());
  EXPECT_FALSE(c.http.headers.client_cert);
  EXPECT_TRUE(parse(minimal()).config.http.headers.client_cert);
}

TEST_F(CommandLineTest, EgressSpiffeIdAndIssuedSpiffeId) {
  ParseOutcome outcome = parse({
      "--service-name",
      "app.ns",
      "--ca-cert",
      ca_,
      "--ca-key",
      key_,
      "--trust",
      ca_,
      "--spiffe-id",
      "spiffe://td/ns/app",
      "--egress",
      "127.0.0.1:15080=orders.ns,spiffe-id=spiffe://td/ns/orders",
      "--egress",
      "127.0.0.1:15081=pay.ns,san=none,spiffe-id=spiffe://td/ns/pay",
      "--upstream",
      "orders.ns=127.0.0.1:1",
      "--upstream",
      "pay.ns=127.0.0.1:2",
  });
  ASSERT_EQ(outcome.action, ParseOutcome::Action::kRun) << outcome.message;
  EXPECT_EQ(outcome.config.spiffe_id, "spiffe://td/ns/app");
  EXPECT_EQ(outcome.config.listeners[0].spiffe_id, "spiffe://td/ns/orders");
  EXPECT_EQ(outcome.config.listeners[0].san, "orders.ns");
  EXPECT_EQ(outcome.config.listeners[1].spiffe_id, "spiffe://td/ns/pay");
  EXPECT_EQ(outcome.config.listeners[1].san, "");
}

TEST_F(CommandLineTest, AuthzErrorsNameTheFlag) {
  struct Case {
    std::vector<std::string> extra;
    std::string message;
  };
  const std::string http_mtls = "127.0.0.1:15450=127.0.0.1:1,protocol=http,client-cert=require";
  const std::vector<Case> cases = {
      {{"--ingress", "127.0.0.1:15450=127.0.0.1:1,allow=orders.ns"},
       "--ingress '127.0.0.1:15450=127.0.0.1:1,allow=orders.ns': allow needs client-cert=require"},
      {{"--ingress", "127.0.0.1:15450=127.0.0.1:1,client-cert=optional,allow=a.ns"},
       "allow needs client-cert=require"},
      {{"--ingress", http_mtls + ",allow=orders..ns"},
       "allow: identity pattern 'orders..ns': not a DNS name"},
      {{"--ingress", http_mtls + ",allow=spiffe://TD/x"}, "identity pattern 'spiffe://TD/x'"},
      {{"--ingress", http_mtls + ",allow=a.ns||b.ns"}, "empty identity in allow list"},
      {{"--ingress", http_mtls + ",authz=strict"}, "authz 'strict' is not enforce or audit"},
      {{"--ingress", http_mtls, "--authz-rule", "127.0.0.1:9999,allow=a.ns"},
       "--authz-rule '127.0.0.1:9999,allow=a.ns': no --ingress listens on '127.0.0.1:9999'"},
      {{"--ingress", http_mtls, "--authz-rule", "127.0.0.1:15450,path=/a"},
       "--authz-rule '127.0.0.1:15450,path=/a': allow=ID[|ID...] is required"},
      {{"--ingress", http_mtls, "--authz-rule", "127.0.0.1:15450,allow=a.ns,method=get"},
       "method 'get' is not an upper-case method name"},
      {{"--ingress", http_mtls, "--authz-rule", "127.0.0.1:15450,allow=*.*"},
       "identity pattern '*.*'"},
      {{"--ingress", "127.0.0.1:15450=127.0.0.1:1,protocol=http", "--authz-rule",
        "127.0.0.1:15450,allow=a.ns"},
       "ingress_127.0.0.1:15450 needs client-cert=require"},
      {{"--ingress", "127.0.0.1:15450=127.0.0.1:1,client-cert=require", "--authz-rule",
        "127.0.0.1:15450,allow=a.ns"},
       "ingress_127.0.0.1:15450 is protocol=tcp: rules apply to HTTP listeners"},
      {{"--egress", "127.0.0.1:15080=orders.ns,spiffe-id=spiffe://td/*", "--upstream",
        "orders.ns=127.0.0.1:1"},
       "spiffe-id 'spiffe://td/*' is not a SPIFFE ID"},
      {{"--egress", "127.0.0.1:15080=orders.ns,san=none", "--upstream", "orders.ns=127.0.0.1:1"},
       "san=none needs spiffe-id=ID"},
      {{"--spiffe-id", "spiffe://td/ns/app"},
       "--spiffe-id 'spiffe://td/ns/app': applies to certificates the local issuer makes"},
      {{"--spiffe-id", "orders.ns"}, "--spiffe-id 'orders.ns': not a SPIFFE ID"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = minimal();
    args.push_back("--trust");
    args.push_back(ca_);
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    const ParseOutcome outcome = parse(args);
    EXPECT_EQ(outcome.exit_code, 2) << c.message;
    EXPECT_EQ(outcome.message.find('\n'), std::string::npos) << outcome.message;
    EXPECT_NE(outcome.message.find(c.message), std::string::npos)
        << "expected: " << c.message << "\n  got:      " << outcome.message;
  }
}

// A table of command lines that must be refused: extra arguments after minimal() and
// a substring of the one-line message.
TEST_F(CommandLineTest, Errors) {
  struct Case {
    std::vector<std::string> extra;
    std::string message;
    bool replace_minimal = false;  // true: `extra` is the whole command line
  };
  const std::string missing = dir_ + "/missing.pem";
  const std::vector<Case> cases = {
      {{"--bogus"}, "ringside: unknown flag '--bogus'"},
      {{"--ingres", "1.2.3.4:1=1.2.3.4:2"}, "unknown flag '--ingres'"},  // no abbreviations
      {{"stray"}, "ringside: unexpected argument 'stray' (flags start with --"},
      {{"--drain-timeout", "5", "fortnights"}, "unexpected argument 'fortnights'"},
      {{"--drain-timeout", "5 fortnights"}, "--drain-timeout: '5 fortnights': unknown unit"},
      {{"--threads", "many"}, "--threads 'many'", true},  // not "nothing to do"
      {{"--threads"}, "--threads needs a value"},
      {{"--threads", "1", "--threads", "2"}, "--threads given more than once"},
      {{"--pin-threads=yes"}, "--pin-threads takes no value"},
      {{"--ingress", "0.0.0.0:15444=nowhere"},
       "ringside: --ingress '0.0.0.0:15444=nowhere': target 'nowhere' is not HOST:PORT"},
      {{"--ingress", "0.0.0.0:15444=no-such-host.invalid:80"},
       "--ingress '0.0.0.0:15444=no-such-host.invalid:80': target 'no-such-host.invalid:80': "
       "cannot resolve"},
      {{"--ingress", "0.0.0.0:15444"}, "--ingress '0.0.0.0:15444': expected LISTEN=TARGET"},
      {{"--ingress", "0.0.0.0:99999=127.0.0.1:1"}, "listen address '0.0.0.0:99999'"},
      {{"--ingress", "0.0.0.0:0=127.0.0.1:1"}, "listen port 0 is not allowed"},
      {{"--ingress", "0.0.0.0:15444=127.0.0.1:0"}, "target port 0"},
      {{"--ingress", "0.0.0.0:15444=127.0.0.1:1,color=blue"},
       "unknown key 'color' (ingress keys: protocol, client-cert, alpn, tls, allow, authz)"},
      {{"--ingress", "0.0.0.0:15444=127.0.0.1:1,protocol=udp"},
       "protocol 'udp' is not tcp, http, http2 or grpc"},
      {{"--ingress", "0.0.0.0:15444=127.0.0.1:1,protocol=tcp,protocol=http"},
       "key 'protocol' given twice"},
      {{"--ingress", "0.0.0.0:15444=127.0.0.1:1,http"}, "'http' is not KEY=VALUE"},
      {{"--ingress", "0.0.0.0:15444=127.0.0.1:1,client-cert=maybe"},
       "client-cert 'maybe' is not none, optional or require"},
      {{"--ingress", "0.0.0.0:15444=127.0.0.1:1,client-cert=require"}, "client-cert needs --trust"},
      {{"--ingress", "0.0.0.0:15443=127.0.0.1:9"},
       "listen address 0.0.0.0:15443 is already used by ingress_0.0.0.0:15443"},
      {{"--ingress", "127.0.0.1:15443=127.0.0.1:9"}, "overlaps ingress_0.0.0.0:15443"},
      {{"--egress", "127.0.0.1:15080=orders.ns,tls=off"}, "no --upstream for service 'orders.ns'"},
      {{"--egress", "127.0.0.1:15080=orders.ns", "--upstream", "orders.ns=127.0.0.1:1"},
       "--egress '127.0.0.1:15080=orders.ns': tls=on needs --trust"},
      {{"--egress", "127.0.0.1:15080=orders.ns,tls=maybe"}, "tls 'maybe' is not on or off"},
      {{"--egress", "127.0.0.1:15080=orders.ns,weight=2"},
       "unknown key 'weight' (egress keys: protocol, san, sni, tls, alpn, h2, spiffe-id)"},
      {{"--egress", "127.0.0.1:15080=orders ns"}, "service 'orders ns' is not a service name"},
      {{"--egress", "127.0.0.1:15080=orders.ns,san=a b"}, "san 'a b' is not a DNS name"},
      {{"--upstream", "orders.ns"}, "--upstream 'orders.ns': expected SERVICE=HOST:PORT"},
      {{"--upstream", "orders.ns=dns:orders.example"},
       "--upstream 'orders.ns=dns:orders.example': expected dns:HOST:PORT with a port in 1-65535"},
      {{"--upstream", "orders.ns=dns:orders.example:0"}, "expected dns:HOST:PORT"},
      {{"--upstream", "orders.ns=dns:orders.example:70000"}, "expected dns:HOST:PORT"},
      {{"--upstream", "orders.ns=dns:bad host:80"}, "'bad host' is not a DNS name"},
      {{"--upstream", "orders.ns=dns:o.example:80", "--upstream", "orders.ns=dns:o.example:80"},
       "dns:o.example:80 is already an upstream of orders.ns"},
      {{"--upstream", "orders.ns=file:"}, "--upstream 'orders.ns=file:': expected file:PATH"},
      {{"--upstream", "orders.ns=file:" + missing}, "cannot read: No such file or directory"},
      {{"--upstream", "orders.ns=file:" + dir_}, "not a regular file"},
      {{"--upstream", "orders.ns=file:" + ca_}, "line 1: '-----BEGIN CERTIFICATE-----' is not"},
      {{"--dns-refresh", "10ms"}, "--dns-refresh '10ms': must be at least 100ms"},
      {{"--dns-refresh", "soon"}, "--dns-refresh: 'soon' is not a duration"},
      {{"--outlier-connect-failures", "-1"}, "--outlier-connect-failures '-1': not a whole"},
      {{"--outlier-consecutive-5xx", "1001"}, "--outlier-consecutive-5xx '1001': out of range"},
      {{"--outlier-ejection-time", "0"}, "--outlier-ejection-time '0': must be > 0"},
      {{"--lb-policy", "fastest"},
       "--lb-policy 'fastest': 'fastest' is not a policy (round-robin, least-request, p2c-ewma)"},
      {{"--lb-policy", "orders.ns=p2c-ewma"},
       "--lb-policy 'orders.ns=p2c-ewma': service 'orders.ns' has no --upstream"},
      {{"--lb-policy", "p2c-ewma", "--lb-policy", "round-robin"},
       "--lb-policy 'round-robin': a default policy is already set"},
      {{"--upstream", "o.ns=10.0.0.1:1", "--lb-policy", "o.ns=p2c-ewma", "--lb-policy",
        "o.ns=least-request"},
       "--lb-policy 'o.ns=least-request': service 'o.ns' has a policy already"},
      {{"--grpc-retry-on", "unavailable,aborted"},
       "--grpc-retry-on 'unavailable,aborted': 'aborted' is not one of cancelled, "
       "deadline-exceeded, internal, resource-exhausted, unavailable (or none)"},
      {{"--grpc-per-try-timeout", "soon"}, "--grpc-per-try-timeout: 'soon' is not a duration"},
      {{"--health-check", "orders.ns"}, "--health-check 'orders.ns': expected TARGET=KIND[:ARG]"},
      {{"--service-name", "app.ns", "--ingress",
        "0.0.0.0:15443=127.0.0.1:8080,tls=permissive,client-cert=require", "--cert", cert_, "--key",
        key_, "--trust", ca_},
       "client-cert=require and tls=permissive contradict each other: a plaintext client has no "
       "certificate to require",
       true},
      {{"--service-name", "app.ns", "--ingress", "0.0.0.0:15443=127.0.0.1:8080,tls=off", "--cert",
        cert_, "--key", key_},
       "tls 'off' is not strict or permissive",
       true},
      {{"--health-check", "orders.ns=tcp"},
       "--health-check 'orders.ns=tcp': service 'orders.ns' has no --upstream"},
      {{"--upstream", "o.ns=10.0.0.1:1", "--health-check", "o.ns=ping"},
       "--health-check 'o.ns=ping': 'ping' is not tcp, http or grpc"},
      {{"--upstream", "o.ns=10.0.0.1:1", "--health-check", "o.ns=http:health"},
       "the http path must start with '/' and hold no spaces"},
      {{"--upstream", "o.ns=10.0.0.1:1", "--health-check", "o.ns=tcp:/x"}, "tcp takes no argument"},
      {{"--upstream", "o.ns=10.0.0.1:1", "--health-check", "o.ns=tcp", "--health-check",
        "o.ns=http"},
       "'o.ns' has a health check already"},
      {{"--egress", "127.0.0.1:15080=o.ns,tls=off", "--upstream", "o.ns=10.0.0.1:1",
        "--health-check", "app=http"},
       "--health-check 'app=http': 'app' is the local app of an --ingress: none given",
       true},
      {{"--health-check-interval", "10ms"},
       "--health-check-interval '10ms': must be at least 100ms"},
      {{"--health-check-timeout", "10s"},
       "--health-check-timeout '10s': must be > 0 and at most --health-check-interval (5s)"},
      {{"--health-check-unhealthy-threshold", "0"},
       "--health-check-unhealthy-threshold '0': out of range (1 to 10)"},
      {{"--outlier-max-ejection-percent", "101"},
       "--outlier-max-ejection-percent '101': out of range (0 to 100)"},
      {{"--cert-renew-jitter", "91"}, "--cert-renew-jitter '91': out of range (0 to 90)"},
      {{"--cert-renew-jitter", "20%"}, "--cert-renew-jitter '20%'"},
      {{"--upstream", "orders.ns=10.0.0.1"}, "endpoint '10.0.0.1' is not HOST:PORT"},
      {{"--upstream", "orders.ns=10.0.0.1:1", "--upstream", "orders.ns=10.0.0.1:1"},
       "endpoint 10.0.0.1:1 is already an upstream of orders.ns"},
      {{"--service-name", "app.ns", "--ingress", "0.0.0.0:15443=127.0.0.1:8080"},
       "--ingress '0.0.0.0:15443=127.0.0.1:8080': needs a certificate",
       true},
      {{"--ingress", "0.0.0.0:15443=127.0.0.1:8080", "--cert", cert_, "--key", key_},
       "needs --service-name",
       true},
      {{"--service-name", "app.ns", "--ingress", "0.0.0.0:15443=127.0.0.1:8080", "--cert", cert_},
       "--cert needs --key",
       true},
      {{"--service-name", "app.ns", "--ingress", "0.0.0.0:15443=127.0.0.1:8080", "--key", key_},
       "--key needs --cert",
       true},
      {{"--ca-cert", ca_}, "--ca-cert needs --ca-key"},
      {{"--ca-key", key_}, "--ca-key needs --ca-cert"},
      {{"--ca-cert", ca_, "--ca-key", key_}, "give one certificate source"},
      {{"--cert-dir", dir_}, "--cert-dir holds issued certificates"},
      {{"--trust", missing}, "ringside: --trust '" + missing + "': cannot read: No such file"},
      {{"--trust", dir_}, "--trust '" + dir_ + "': not a regular file"},
      {{"--service-name", "app.ns", "--ingress", "0.0.0.0:1=127.0.0.1:2", "--ca-cert", ca_,
        "--ca-key", key_, "--cert-dir", cert_ + "/sub"},
       "--cert-dir '" + cert_ + "/sub': does not exist and cannot be created",
       true},
      {{"--service-name", "app.ns", "--ingress", "0.0.0.0:1=127.0.0.1:2", "--ca-url", "ftp://ca"},
       "--ca-url 'ftp://ca': not an http:// or https:// URL",
       true},
      {{"--service-name", "bad name"}, "--service-name 'bad name': not a service name", true},
      {{"--key-type", "dsa"}, "--key-type 'dsa': not ecdsa-p256 or rsa-2048"},
      {{"--cert-lifetime", "0"}, "--cert-lifetime '0': must be > 0"},
      {{"--cert-renew-after", "7d"}, "must be more than 0 and less than --cert-lifetime (7d)"},
      {{"--cert-lifetime", "1x"}, "--cert-lifetime: '1x': unknown unit 'x'"},
      {{"--connect-timeout=-1s"}, "--connect-timeout: '-1s' is negative"},
      {{"--connect-timeout", "0"}, "--connect-timeout '0': must be > 0"},
      {{"--handshake-timeout", "0ms"}, "--handshake-timeout '0ms': must be > 0"},
      {{"--idle-timeout", "forever"}, "--idle-timeout: 'forever' is not a duration"},
      {{"--drain-timeout", "99999999999999999999"},
       "--drain-timeout: '99999999999999999999' is too long"},
      {{"--admin", "localhost"}, "--admin 'localhost': address 'localhost' is not HOST:PORT"},
      {{"--admin", "10.1.2.3:9901"}, "--admin '10.1.2.3:9901': not a loopback address"},
      {{"--threads", "many"}, "--threads 'many': not a whole number"},
      {{"--threads=-1"}, "--threads '-1': not a whole number"},
      {{"--threads", "100000"}, "--threads '100000': out of range (0 to 1024)"},
      {{"--cpus", "1-0"}, "--cpus '1-0': '1-0' is not a CPU number or range"},
      {{"--cpus", "a"}, "'a' is not a CPU number"},
      {{"--cpus", "5000"}, "CPU 5000 is not available to this process (allowed: "},
      {{"--cpus", ""}, "--cpus '': "},
      {{"--buffers", "1000"}, "--buffers '1000': not a power of two"},
      {{"--buffers", "0"}, "--buffers '0': out of range (1 to 32768)"},
      {{"--buffers", "65536"}, "out of range (1 to 32768)"},
      {{"--buffer-size", "100"}, "--buffer-size '100': out of range (1k to 1m)"},
      {{"--buffer-size", "2m"}, "--buffer-size '2m': out of range"},
      {{"--max-pending-bytes", "0"}, "--max-pending-bytes '0': must be > 0"},
      {{"--max-pending-bytes", "lots"}, "--max-pending-bytes: 'lots' is not a size"},
      {{"--max-connections", "x"}, "--max-connections 'x': not a whole number"},
      {{"--log-level", "verbose"}, "--log-level 'verbose': not error, warn, info or debug"},
      {{"--admin", "off"}, "nothing to do", true},
      // Listener protocols and ALPN.
      {{"--ingress", "127.0.0.1:1=127.0.0.1:2,protocol=h2"},
       "protocol 'h2' is not tcp, http, http2 or grpc"},
      {{"--ingress", "127.0.0.1:1=127.0.0.1:2,alpn=h2,http/1.1"},
       "'http/1.1' is not KEY=VALUE (separate ALPN ids with ':', as in alpn=h2:http/1.1)"},
      {{"--ingress", "127.0.0.1:1=127.0.0.1:2,alpn="},
       "--ingress '127.0.0.1:1=127.0.0.1:2,alpn=': alpn: an ALPN protocol id cannot be empty"},
      {{"--ingress", "127.0.0.1:1=127.0.0.1:2,alpn=h2::http/1.1"}, "alpn: an ALPN protocol id"},
      {{"--ingress", "127.0.0.1:1=127.0.0.1:2,alpn=h2:"}, "alpn: an ALPN protocol id"},
      {{"--ingress", "127.0.0.1:1=127.0.0.1:2,alpn=h2:h2"}, "alpn: 'h2' is listed twice"},
      {{"--ingress", "127.0.0.1:1=127.0.0.1:2,alpn=h\x01"}, "alpn: ALPN protocol id 'h\x01'"},
      {{"--ingress", "127.0.0.1:1=127.0.0.1:2,alpn=" + std::string(256, 'a')},
       "alpn: ALPN protocol id longer than 255 bytes"},
      {{"--ingress", "127.0.0.1:1=127.0.0.1:2,protocol=http,alpn=h2"},
       "alpn applies to protocol=tcp listeners (protocol=http negotiates its own)"},
      {{"--ingress", "127.0.0.1:1=127.0.0.1:2,protocol=grpc,alpn=h2"},
       "alpn applies to protocol=tcp listeners (protocol=grpc negotiates its own)"},
      {{"--ingress", "127.0.0.1:1=127.0.0.1:2,alpn=h2,alpn=h2"}, "key 'alpn' given twice"},
      {{"--egress", "127.0.0.1:3=orders.ns,tls=off,alpn=h2", "--upstream", "orders.ns=1.2.3.4:5"},
       "alpn needs tls=on (ALPN is part of the TLS handshake)"},
      {{"--egress", "127.0.0.1:3=orders.ns,protocol=http,alpn=h2", "--upstream",
        "orders.ns=1.2.3.4:5"},
       "--egress '127.0.0.1:3=orders.ns,protocol=http,alpn=h2': alpn applies to protocol=tcp"},
      {{"--ingress", "127.0.0.1:1=127.0.0.1:2,bogus=1"},
       "unknown key 'bogus' (ingress keys: protocol, client-cert, alpn, tls, allow, authz)"},
      // HTTP/2 settings.
      {{"--h2-max-concurrent-streams", "0"},
       "--h2-max-concurrent-streams '0': out of range (1 to 2147483647)"},
      {{"--h2-max-concurrent-streams", "2147483648"}, "out of range (1 to 2147483647)"},
      {{"--h2-max-concurrent-streams", "many"}, "--h2-max-concurrent-streams 'many': not a whole"},
      {{"--h2-initial-stream-window", "65534"},
       "--h2-initial-stream-window '65534': out of range (65535 to 2147483647 bytes)"},
      {{"--h2-initial-stream-window", "2147483648"}, "--h2-initial-stream-window '2147483648'"},
      {{"--h2-initial-stream-window", "4096m"}, "--h2-initial-stream-window '4096m': out of"},
      {{"--h2-initial-stream-window", "big"}, "--h2-initial-stream-window: 'big' is not a size"},
      {{"--h2-initial-connection-window", "1k"},
       "--h2-initial-connection-window '1k': out of range (65535 to 2147483647 bytes)"},
      {{"--h2-initial-connection-window", "2048m"}, "--h2-initial-connection-window '2048m'"},
      {{"--h2-max-header-list", "1023"},
       "--h2-max-header-list '1023': out of range (1024 to 1048576 bytes)"},
      {{"--h2-max-header-list", "2m"}, "--h2-max-header-list '2m': out of range"},
      {{"--h2-max-headers", "0"}, "--h2-max-headers '0': out of range (1 to 10000)"},
      {{"--h2-max-headers", "10001"}, "--h2-max-headers '10001': out of range (1 to 10000)"},
      {{}, "nothing to do", true},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.replace_minimal ? std::vector<std::string>{} : minimal();
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    const ParseOutcome outcome = parse(args);
    std::string joined;
    for (const std::string& arg : args) joined += arg + " ";
    EXPECT_EQ(outcome.action, ParseOutcome::Action::kExit) << joined;
    EXPECT_EQ(outcome.exit_code, 2) << joined;
    EXPECT_NE(outcome.message.find(c.message), std::string::npos)
        << joined << "\n  expected: " << c.message << "\n  got:      " << outcome.message;
    EXPECT_EQ(outcome.message.rfind("ringside: ", 0), 0u) << outcome.message;
    EXPECT_EQ(outcome.message.find('\n'), std::string::npos) << "one line: " << outcome.message;
  }
}

}  // namespace
}  // namespace ringside
