#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ringside/admin.h"

namespace ringside {
namespace {

// A client socket with a receive timeout, so a server that never answers fails the
// test instead of hanging it.
int connect_to(const SocketAddress& address) {
  const int fd = socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (connect(fd, address.get(), address.length) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads until the server closes (or the receive timeout, which the caller detects by
// the missing response).
std::string read_all(int fd) {
  std::string out;
  char buffer[4096];
  while (true) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

std::string exchange(const SocketAddress& address, std::string_view request) {
  const int fd = connect_to(address);
  if (fd < 0) return "connect failed";
  send_all(fd, request);
  std::string response = read_all(fd);
  close(fd);
  return response;
}

struct Parsed {
  int status = 0;
  std::string headers;  // raw, for find()
  std::string body;
};

Parsed parse(const std::string& response) {
  Parsed parsed;
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return parsed;
  parsed.status = std::stoi(response.substr(9, 3));
  const size_t end = response.find("\r\n\r\n");
  if (end == std::string::npos) return parsed;
  parsed.headers = response.substr(0, end + 2);
  parsed.body = response.substr(end + 4);
  return parsed;
}

class AdminServerTest : public ::testing::Test {
 protected:
  void start(AdminServerOptions options = {}) {
    auto address = SocketAddress::parse_numeric("127.0.0.1:0");
    ASSERT_TRUE(address.ok());
    std::string detail;
    auto server = AdminServer::start(*address, options, &detail);
    ASSERT_TRUE(server.ok()) << detail;
    server_ = std::move(server.value());
    ASSERT_NE(server_->bound_address().port(), 0);
    server_->route("GET", "/ready", [](const std::string&, const std::string&, const std::string&) {
      return AdminResponse{200, "text/plain", "ready\n"};
    });
    server_->route(
        "POST", "/echo",
        [](const std::string& method, const std::string& path, const std::string& body) {
          return AdminResponse{201, "application/json", method + " " + path + " [" + body + "]"};
        });
  }
  std::string get(std::string_view path) {
    return exchange(server_->bound_address(),
                    "GET " + std::string(path) + " HTTP/1.1\r\nHost: x\r\n\r\n");
  }

  std::unique_ptr<AdminServer> server_;
};

TEST_F(AdminServerTest, ServesARoute) {
  start();
  const Parsed response = parse(get("/ready"));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "ready\n");
  EXPECT_NE(response.headers.find("Content-Type: text/plain\r\n"), std::string::npos);
  EXPECT_NE(response.headers.find("Content-Length: 6\r\n"), std::string::npos);
  EXPECT_NE(response.headers.find("Connection: close\r\n"), std::string::npos);
}

TEST_F(AdminServerTest, PassesMethodTargetAndBody) {
  start();
  const Parsed response = parse(exchange(server_->bound_address(),
                                         "POST /echo?x=1 HTTP/1.1\r\nHost: x\r\n"
                                         "content-length: 5\r\n\r\nhello"));
  EXPECT_EQ(response.status, 201);
  EXPECT_EQ(response.body, "POST /echo?x=1 [hello]");
  EXPECT_NE(response.headers.find("Content-Type: application/json"), std::string::npos);
}

TEST_F(AdminServerTest, BodyArrivingInPieces) {
  start();
  const int fd = connect_to(server_->bound_address());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "POST /echo HTTP/1.1\r\nContent-"));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(send_all(fd, "Length: 6\r\n\r\nab"));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(send_all(fd, "cdef"));
  const Parsed response = parse(read_all(fd));
  close(fd);
  EXPECT_EQ(response.status, 201);
  EXPECT_EQ(response.body, "POST /echo [abcdef]");
}

TEST_F(AdminServerTest, ExpectContinue) {
  start();
  const int fd = connect_to(server_->bound_address());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(
      send_all(fd, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"));
  char interim[64] = {};
  const ssize_t n = recv(fd, interim, sizeof(interim) - 1, 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(interim), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(send_all(fd, "ok"));
  const Parsed response = parse(read_all(fd));
  close(fd);
  EXPECT_EQ(response.status, 201);
  EXPECT_EQ(response.body, "POST /echo [ok]");
}

TEST_F(AdminServerTest, UnknownPathIs404) {
  start();
  EXPECT_EQ(parse(get("/nope")).status, 404);
  EXPECT_EQ(parse(get("/ready/")).status, 404);  // exact match only
}

TEST_F(AdminServerTest, WrongMethodIs405WithAllow) {
  start();
  const Parsed post = parse(
      exchange(server_->bound_address(), "POST /ready HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.headers.find("Allow: GET, HEAD\r\n"), std::string::npos) << post.headers;
  const Parsed get_echo = parse(get("/echo"));
  EXPECT_EQ(get_echo.status, 405);
  EXPECT_NE(get_echo.headers.find("Allow: POST\r\n"), std::string::npos) << get_echo.headers;
}

TEST_F(AdminServerTest, HeadAnswersLikeGetWithoutBody) {
  start();
  const Parsed head = parse(exchange(server_->bound_address(), "HEAD /ready HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(head.status, 200);
  EXPECT_NE(head.headers.find("Content-Length: 6\r\n"), std::string::npos);
  EXPECT_EQ(head.body, "");
}

TEST_F(AdminServerTest, QueryStringIsIgnoredForRouting) {
  start();
  const Parsed response = parse(get("/ready?verbose=1"));
  EXPECT_EQ(response.status, 200);
}

TEST_F(AdminServerTest, RoutesCanBeAddedAndReplacedWhileRunning) {
  start();
  EXPECT_EQ(parse(get("/late")).status, 404);
  server_->route("GET", "/late", [](const std::string&, const std::string&, const std::string&) {
    return AdminResponse{200, "text/plain", "one"};
  });
  EXPECT_EQ(parse(get("/late")).body, "one");
  server_->route("GET", "/late", [](const std::string&, const std::string&, const std::string&) {
    return AdminResponse{503, "text/plain", "two"};
  });
  const Parsed replaced = parse(get("/late"));
  EXPECT_EQ(replaced.status, 503);
  EXPECT_EQ(replaced.body, "two");
}

TEST_F(AdminServerTest, WhileStartingEveryRequestIs503UntilTheRoutesAreComplete) {
  AdminServerOptions options;
  options.starting = true;
  start(options);
  for (const char* path : {"/ready", "/stats", "/nope"}) {
    const Parsed response = parse(get(path));
    EXPECT_EQ(response.status, 503) << path;
    EXPECT_EQ(response.body, "starting\n") << path;
  }
  server_->routes_complete();
  EXPECT_EQ(parse(get("/ready")).status, 200);
  EXPECT_EQ(parse(get("/nope")).status, 404);
  server_->routes_complete();  // idempotent
  EXPECT_EQ(parse(get("/ready")).body, "ready\n");
}

TEST_F(AdminServerTest, HandlerThatThrowsIs500) {
  start();
  server_->route("GET", "/boom",
                 [](const std::string&, const std::string&, const std::string&) -> AdminResponse {
                   throw std::runtime_error("boom");
                 });
  EXPECT_EQ(parse(get("/boom")).status, 500);
  EXPECT_EQ(parse(get("/ready")).status, 200);  // the server survives it
}

TEST_F(AdminServerTest, MalformedRequestsAre400) {
  start();
  for (const char* request :
       {"garbage\r\n\r\n", "GET\r\n\r\n", "GET /ready\r\n\r\n", "GET ready HTTP/1.1\r\n\r\n",
        "GET /ready HTTP/2\r\n\r\n", "GET /ready HTTP/1.1\r\nno colon\r\n\r\n",
        "POST /echo HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        "POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "\x16\x03\x01\x02\x01\x01\xfc\x03\x03\r\n\r\n"}) {
    EXPECT_EQ(parse(exchange(server_->bound_address(), request)).status, 400) << request;
  }
}

TEST_F(AdminServerTest, SizeLimits) {
  AdminServerOptions options;
  options.max_header_bytes = 1024;
  options.max_body_bytes = 100;
  start(options);
  const std::string big_header =
      "GET /ready HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n";
  EXPECT_EQ(parse(exchange(server_->bound_address(), big_header)).status, 431);
  const std::string endless_header = "GET /ready HTTP/1.1\r\nX-Big: " + std::string(5000, 'a');
  EXPECT_EQ(parse(exchange(server_->bound_address(), endless_header)).status, 431);
  EXPECT_EQ(parse(exchange(server_->bound_address(),
                           "POST /echo HTTP/1.1\r\nContent-Length: 101\r\n\r\n"))
                .status,
            413);
  EXPECT_EQ(parse(exchange(server_->bound_address(),
                           "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"))
                .status,
            501);
}

TEST_F(AdminServerTest, SilentClientDoesNotBlockOthers) {
  AdminServerOptions options;
  options.read_timeout = std::chrono::minutes(5);  // far beyond the client's 10 s timeout
  start(options);
  const int silent = connect_to(server_->bound_address());
  ASSERT_GE(silent, 0);
  const int partial = connect_to(server_->bound_address());
  ASSERT_GE(partial, 0);
  ASSERT_TRUE(send_all(partial, "GET /rea"));
  // A server that served one connection at a time would make these wait for minutes;
  // the client gives up after 10 s and the status would be 0.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(parse(get("/ready")).status, 200);
  close(silent);
  close(partial);
}

TEST_F(AdminServerTest, ReadTimeoutAnswers408AndCloses) {
  AdminServerOptions options;
  options.read_timeout = std::chrono::milliseconds(200);
  start(options);
  const int fd = connect_to(server_->bound_address());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "GET /ready HTTP/1.1\r\n"));  // never finished
  const Parsed response = parse(read_all(fd));           // returns when the server closes
  close(fd);
  EXPECT_EQ(response.status, 408);
}

TEST_F(AdminServerTest, ManyClientsAtOnce) {
  start();
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < 25; ++i) ok += parse(get("/ready")).status == 200;
    });
  }
  for (std::thread& c : clients) c.join();
  EXPECT_EQ(ok.load(), 200);
}

TEST_F(AdminServerTest, StopClosesTheListener) {
  start();
  const SocketAddress address = server_->bound_address();
  const int idle = connect_to(address);  // an open connection must not delay stop()
  ASSERT_GE(idle, 0);
  server_->stop();
  server_->stop();  // idempotent
  EXPECT_EQ(connect_to(address), -1);
  // Closed: an orderly EOF if the server had accepted it, a reset if it was still in the
  // accept queue. Not the client's 10 s receive timeout (EAGAIN).
  char byte;
  const ssize_t n = recv(idle, &byte, 1, 0);
  EXPECT_TRUE(n == 0 || (n < 0 && errno == ECONNRESET)) << n << " " << std::strerror(errno);
  close(idle);
  server_.reset();  // destructor after stop
}

TEST(AdminServerStartTest, ReportsBindFailure) {
  auto address = SocketAddress::parse_numeric("127.0.0.1:0");
  ASSERT_TRUE(address.ok());
  std::string detail;
  auto first = AdminServer::start(*address, &detail);
  ASSERT_TRUE(first.ok()) << detail;
  auto second = AdminServer::start((*first)->bound_address(), &detail);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().kind, ErrorKind::kIo);
  EXPECT_EQ(second.error().sys_errno, EADDRINUSE);
  EXPECT_NE(detail.find("cannot listen on " + (*first)->bound_address().to_string()),
            std::string::npos)
      << detail;
}

TEST(AdminServerStartTest, ServesIpv6Loopback) {
  auto address = SocketAddress::parse_numeric("[::1]:0");
  ASSERT_TRUE(address.ok());
  std::string detail;
  auto server = AdminServer::start(*address, &detail);
  if (!server.ok() && server.error().sys_errno == EADDRNOTAVAIL) GTEST_SKIP() << "no IPv6";
  ASSERT_TRUE(server.ok()) << detail;
  (*server)->route("GET", "/ready", [](const std::string&, const std::string&, const std::string&) {
    return AdminResponse{200, "text/plain", "v6"};
  });
  EXPECT_EQ(parse(exchange((*server)->bound_address(), "GET /ready HTTP/1.0\r\n\r\n")).body, "v6");
}

}  // namespace
}  // namespace ringside
