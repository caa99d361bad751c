#include "ringside/probe.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <initializer_list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ringside/admin.h"

namespace ringside {
namespace {

SocketAddress loopback_any_port() { return SocketAddress::parse_numeric("127.0.0.1:0").value(); }

std::unique_ptr<AdminServer> admin_answering(int status, const std::string& body) {
  std::string detail;
  auto server = AdminServer::start(loopback_any_port(), &detail);
  EXPECT_TRUE(server.ok()) << detail;
  server.value()->route("GET", "/ready",
                        [status, body](const std::string&, const std::string&, const std::string&) {
                          return AdminResponse{status, "text/plain", body};
                        });
  return std::move(server.value());
}

// A port nothing listens on: bound, then closed.
SocketAddress closed_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  SocketAddress address = loopback_any_port();
  EXPECT_EQ(bind(fd, address.get(), address.length), 0);
  address.length = sizeof(sockaddr_storage);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address.storage), &address.length);
  close(fd);
  return address;
}

// A listening socket on a free loopback port (its address in *address), or -1.
int listening_socket(SocketAddress* address) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  *address = loopback_any_port();
  if (bind(fd, address->get(), address->length) != 0 || listen(fd, 4) != 0) {
    close(fd);
    return -1;
  }
  address->length = sizeof(sockaddr_storage);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address->storage), &address->length);
  return fd;
}

TEST(Probe, ReadyIs200) {
  auto server = admin_answering(200, "ready\n");
  const ProbeResult result = probe_ready(server->bound_address(), std::chrono::seconds(5));
  EXPECT_TRUE(result.ready);
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.line, "ready: " + server->bound_address().to_string() + " answered 200 ready");
}

TEST(Probe, DrainingIsNotReady) {
  auto server = admin_answering(503, "draining\n");
  const ProbeResult result = probe_ready(server->bound_address(), std::chrono::seconds(5));
  EXPECT_FALSE(result.ready);
  EXPECT_EQ(result.status, 503);
  EXPECT_EQ(result.line,
            "not ready: " + server->bound_address().to_string() + " answered 503 draining");
}

TEST(Probe, NothingListeningIsNotReady) {
  const SocketAddress address = closed_port();
  const ProbeResult result = probe_ready(address, std::chrono::seconds(5));
  EXPECT_FALSE(result.ready);
  EXPECT_EQ(result.status, 0);
  EXPECT_NE(result.line.find("cannot connect to " + address.to_string()), std::string::npos)
      << result.line;
}

TEST(Probe, SilentServerTimesOut) {
  // Listens (so connect succeeds through the backlog) but never accepts nor answers.
  SocketAddress address;
  const int fd = listening_socket(&address);
  ASSERT_GE(fd, 0);
  const auto start = std::chrono::steady_clock::now();
  const ProbeResult result = probe_ready(address, std::chrono::milliseconds(300));
  const auto took = std::chrono::steady_clock::now() - start;
  close(fd);
  EXPECT_FALSE(result.ready);
  EXPECT_EQ(result.line, "not ready: no answer from " + address.to_string() + " within 300ms");
  EXPECT_GE(took, std::chrono::milliseconds(290));
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST(Probe, NotAnAdminServer) {
  // Answers something that is not HTTP, then closes.
  SocketAddress address;
  const int fd = listening_socket(&address);
  ASSERT_GE(fd, 0);
  std::thread peer([fd] {
    const int c = accept(fd, nullptr, nullptr);
    if (c >= 0) {
      const char junk[] = "SSH-2.0-OpenSSH\r\n";
      (void)!write(c, junk, sizeof(junk) - 1);
      close(c);
    }
  });
  const ProbeResult result = probe_ready(address, std::chrono::seconds(5));
  peer.join();
  close(fd);
  EXPECT_FALSE(result.ready);
  EXPECT_EQ(result.line,
            "not ready: " + address.to_string() + " did not answer like an admin server");
}

int run(std::initializer_list<const char*> args) {
  std::vector<const char*> argv(args);
  return run_probe(static_cast<int>(argv.size()), argv.data());
}

TEST(ProbeCommand, ExitStatusFollowsReadiness) {
  auto ready = admin_answering(200, "ready\n");
  auto draining = admin_answering(503, "draining\n");
  const std::string ready_admin = ready->bound_address().to_string();
  const std::string draining_admin = draining->bound_address().to_string();
  EXPECT_EQ(run({"--admin", ready_admin.c_str()}), 0);
  const std::string joined = "--admin=" + ready_admin;
  EXPECT_EQ(run({joined.c_str(), "--timeout", "1s"}), 0);
  EXPECT_EQ(run({"--admin", draining_admin.c_str(), "--timeout=500ms"}), 1);
}

TEST(ProbeCommand, WaitAsksAgainUntilReady) {
  auto server = admin_answering(503, "starting\n");
  const std::string admin = server->bound_address().to_string();
  std::thread later([&server] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    server->route("GET", "/ready", [](const std::string&, const std::string&, const std::string&) {
      return AdminResponse{200, "text/plain", "ready\n"};
    });
  });
  const auto start = std::chrono::steady_clock::now();
  const int status = run({"--admin", admin.c_str(), "--wait", "10s"});
  const auto took = std::chrono::steady_clock::now() - start;
  later.join();
  EXPECT_EQ(status, 0);
  EXPECT_GE(took, std::chrono::milliseconds(400));
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(ProbeCommand, WaitGivesUp) {
  auto server = admin_answering(503, "starting\n");
  const std::string admin = server->bound_address().to_string();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(run({"--admin", admin.c_str(), "--wait", "600ms"}), 1);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(350));
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST(ProbeCommand, BadFlagsExit2) {
  EXPECT_EQ(run({"--admin"}), 2);
  EXPECT_EQ(run({"--admin", "localhost:9901"}), 2);
  EXPECT_EQ(run({"--admin", "off"}), 2);
  EXPECT_EQ(run({"--timeout", "soon"}), 2);
  EXPECT_EQ(run({"--timeout", "0"}), 2);
  EXPECT_EQ(run({"--wait", "later"}), 2);
  EXPECT_EQ(run({"--ready"}), 2);
  EXPECT_EQ(run({"now"}), 2);
  EXPECT_EQ(run({"--help"}), 0);
}

}  // namespace
}  // namespace ringside
