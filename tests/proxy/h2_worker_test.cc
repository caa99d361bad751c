// The worker's HTTP/2 server codec (src/proxy/h2.cc) driven through FakeRing: an h2c client
// (our own client-role http2::Session) sends several streams on one connection; each stream
// is its own exchange with its own upstream HTTP/1.1 connection, its own endpoint pick and
// its own retries, and answers may come back in any order. Every completion is injected by
// hand, so each interleaving is deterministic.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fake_worker.h"
#include "ringside/http2.h"
#include "test_cluster.h"

namespace ringside::proxy {
namespace {

const std::string kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// What the client saw of each stream.
struct Seen {
  std::string status;
  std::string body;
  bool ended = false;
  uint32_t reset = 0xffffffff;  // none
};

class Client final : public http2::Events {
 public:
  Client() : session(http2::Role::kClient, *this) {}
  void on_head(int32_t id, const http2::Head& head) override {
    for (const http2::Field& f : head.fields) {
      if (f.name == ":status") streams[id].status = std::string(f.value);
    }
  }
  void on_data(int32_t id, std::span<const uint8_t> data) override {
    streams[id].body.append(reinterpret_cast<const char*>(data.data()), data.size());
    session.consume(id, data.size());
  }
  void on_trailers(int32_t, std::span<const http2::Field>) override {}
  void on_end(int32_t id) override { streams[id].ended = true; }
  void on_reset(int32_t id, uint32_t code, bool) override { streams[id].reset = code; }
  void on_close(int32_t, uint32_t) override {}
  void on_goaway(int32_t, uint32_t) override { goaway = true; }
  void on_connection_error(const http2::ConnectionError&) override { failed = true; }

  int32_t get(const std::string& path) {
    const http2::Field fields[] = {
        {":method", "GET"}, {":scheme", "http"}, {":authority", "svc"}, {":path", path}};
    auto id = session.submit_request(fields, true);
    EXPECT_TRUE(id.ok());
    return id.ok() ? *id : -1;
  }

  http2::Session session;
  std::map<int32_t, Seen> streams;
  bool goaway = false;
  bool failed = false;
};

class H2WorkerTest : public FakeWorkerTest {
 protected:
  void SetUp() override {
    runtime_ = make_http_egress_runtime({"127.0.0.1:9001", "127.0.0.1:9002"});
    start_worker(64);
    auto accept = ring_->last(Call::kAcceptMultishot);
    ASSERT_TRUE(accept.has_value());
    ring_->complete(accept->user_data, kClientFd, /*more=*/true);
    turn();
    client_recv_ = recv_token(kClientFd);
    ASSERT_NE(client_recv_, 0u);
  }

  ListenerStats& lstats() { return runtime_->stats->listeners[0][0]; }
  http::HttpStats& hstats() { return runtime_->http.stats->listeners[0][0]; }

  // The client's frames to the worker, then the worker's answer back to the client.
  void exchange_bytes(bool preface = false) {
    std::string out = preface ? kPreface : std::string();
    std::string frames;
    client_.session.produce(frames);
    if (preface && frames.rfind(kPreface, 0) == 0) frames.erase(0, kPreface.size());
    out += frames;
    if (!out.empty()) {
      ring_->deliver(client_recv_, out);
      turn();
    }
    pump_back();
  }

  void pump_back() {
    std::string back = drain_sends(kClientFd);
    if (!back.empty()) {
      auto used = client_.session.receive(
          std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(back.data()), back.size()));
      EXPECT_TRUE(used.ok());
    }
  }

  // Completes the connects in flight, oldest first; returns their descriptors.
  std::vector<int> connect_all() {
    std::vector<int> fds;
    for (const auto& op : std::vector<FakeRing::Op>(ring_->ops())) {
      if (op.call != Call::kConnect || !ring_->armed(op.user_data)) continue;
      ring_->complete(op.user_data, 0);
      turn();
      fds.push_back(op.fd);
    }
    return fds;
  }

  // The port a connect on fd went to.
  int endpoint_of(int fd) {
    for (const auto& op : ring_->ops()) {
      if (op.call == Call::kConnect && op.fd == fd) {
        return ntohs(reinterpret_cast<const sockaddr_in*>(&op.addr)->sin_port);
      }
    }
    return 0;
  }

  Client client_;
  uint64_t client_recv_ = 0;
};

TEST_F(H2WorkerTest, StreamsAreExchangesAnsweredInAnyOrder) {
  const int32_t a = client_.get("/a");
  const int32_t b = client_.get("/b");
  exchange_bytes(/*preface=*/true);
  EXPECT_EQ(lstats().h2_cx_total.get(), 1u);
  EXPECT_EQ(lstats().h2_streams_active.get(), 2);
  // Each stream picks its endpoint (round robin over two) and gets its own connection.
  ASSERT_EQ(ring_->count(Call::kConnect), 2u);
  std::vector<int> ups = connect_all();
  ASSERT_EQ(ups.size(), 2u);
  EXPECT_NE(endpoint_of(ups[0]), endpoint_of(ups[1]));
  const std::string head_a = drain_sends(ups[0]);
  const std::string head_b = drain_sends(ups[1]);
  EXPECT_EQ(head_a, "GET /a HTTP/1.1\r\nHost: svc\r\n\r\n");
  EXPECT_EQ(head_b, "GET /b HTTP/1.1\r\nHost: svc\r\n\r\n");

  // b's answer first, then a's.
  ring_->deliver(recv_token(ups[1]), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nbb");
  turn();
  pump_back();
  EXPECT_TRUE(client_.streams[b].ended);
  EXPECT_EQ(client_.streams[b].body, "bb");
  EXPECT_FALSE(client_.streams[a].ended);
  ring_->deliver(recv_token(ups[0]), "HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\na");
  turn();
  pump_back();
  EXPECT_EQ(client_.streams[a].status, "404");
  EXPECT_EQ(client_.streams[a].body, "a");
  EXPECT_EQ(hstats().request_count.get(), 2u);
  EXPECT_EQ(hstats().request_active.get(), 0);
  exchange_bytes();  // the client's acknowledgements; the streams' objects are freed
  EXPECT_EQ(lstats().h2_streams_active.get(), 0);

  // Both upstream connections went back to the pool: the next streams reuse them.
  client_.get("/c");
  client_.get("/d");
  exchange_bytes();
  EXPECT_EQ(ring_->count(Call::kConnect), 2u);
}

TEST_F(H2WorkerTest, A503IsRetriedForItsStreamOnly) {
  const int32_t a = client_.get("/a");
  const int32_t b = client_.get("/b");
  exchange_bytes(true);
  std::vector<int> ups = connect_all();
  ASSERT_EQ(ups.size(), 2u);
  drain_sends(ups[0]);
  drain_sends(ups[1]);
  ring_->deliver(recv_token(ups[0]), "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n");
  turn();
  // a is retried on a new connection (to the next endpoint); b is untouched.
  ASSERT_EQ(ring_->count(Call::kConnect), 3u);
  std::vector<int> retry = connect_all();
  ASSERT_EQ(retry.size(), 1u);
  EXPECT_EQ(drain_sends(retry[0]), "GET /a HTTP/1.1\r\nHost: svc\r\n\r\n");
  ring_->deliver(recv_token(retry[0]), "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nretry");
  ring_->deliver(recv_token(ups[1]), "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb");
  turn();
  pump_back();
  EXPECT_EQ(client_.streams[a].status, "200");
  EXPECT_EQ(client_.streams[a].body, "retry");
  EXPECT_EQ(client_.streams[b].body, "b");
  EXPECT_EQ(hstats().request_retry_count.get(), 1u);
}

TEST_F(H2WorkerTest, ClientResetClosesOnlyItsUpstream) {
  const int32_t a = client_.get("/a");
  const int32_t b = client_.get("/b");
  exchange_bytes(true);
  std::vector<int> ups = connect_all();
  ASSERT_EQ(ups.size(), 2u);
  drain_sends(ups[0]);
  drain_sends(ups[1]);
  client_.session.reset(a, http2::kCancel);
  exchange_bytes();
  // a's upstream connection is being closed (its operations cancelled), b's is not.
  auto cancelled = [&](int fd) {
    for (const auto& op : ring_->ops()) {
      if (op.call == Call::kCancelFd && op.fd == fd) return true;
    }
    return false;
  };
  EXPECT_TRUE(cancelled(ups[0]));
  EXPECT_FALSE(cancelled(ups[1]));
  ring_->deliver(recv_token(ups[1]), "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb");
  turn();
  pump_back();
  EXPECT_EQ(client_.streams[b].body, "b");
  EXPECT_EQ(hstats().request_active.get(), 0);
  EXPECT_EQ(lstats().h2_resets_received.get(), 1u);
}

TEST_F(H2WorkerTest, ClientGoneReleasesEveryStream) {
  client_.get("/a");
  client_.get("/b");
  exchange_bytes(true);
  connect_all();
  EXPECT_EQ(hstats().request_active.get(), 2);
  ring_->complete(client_recv_, 0);  // EOF
  turn();
  EXPECT_EQ(hstats().request_active.get(), 0);
  EXPECT_EQ(lstats().h2_cx_active.get(), 0);
  EXPECT_EQ(lstats().h2_streams_active.get(), 0);
}

// ---- the HTTP/2 client codec: an h2c upstream (protocol=http2, tls=off) ----------------

// The upstream app: a server-role session that records heads and answers on demand.
class App final : public http2::Events {
 public:
  App() : session(http2::Role::kServer, *this) {}
  void on_head(int32_t id, const http2::Head& head) override {
    for (const http2::Field& f : head.fields) {
      if (f.name == ":path") paths[id] = std::string(f.value);
    }
    order.push_back(id);
  }
  void on_data(int32_t id, std::span<const uint8_t> data) override {
    bodies[id].append(reinterpret_cast<const char*>(data.data()), data.size());
    session.consume(id, data.size());
  }
  void on_trailers(int32_t, std::span<const http2::Field>) override {}
  void on_end(int32_t id) override { ended.push_back(id); }
  void on_reset(int32_t id, uint32_t code, bool) override { resets[id] = code; }
  void on_close(int32_t, uint32_t) override {}
  void on_goaway(int32_t, uint32_t) override {}
  void on_connection_error(const http2::ConnectionError&) override { failed = true; }

  void answer(int32_t id, const std::string& body) {
    const http2::Field fields[] = {{":status", "200"}};
    ASSERT_TRUE(session.submit_response(id, fields, false).ok());
    ASSERT_TRUE(session
                    .send_data(id,
                               std::span<const uint8_t>(
                                   reinterpret_cast<const uint8_t*>(body.data()), body.size()),
                               true)
                    .ok());
  }

  http2::Session session;
  std::map<int32_t, std::string> paths, bodies;
  std::map<int32_t, uint32_t> resets;
  std::vector<int32_t> order, ended;
  bool failed = false;
};

class H2UpstreamTest : public FakeWorkerTest {
 protected:
  static constexpr int kOtherClientFd = kClientFd + 1;

  void SetUp() override {
    runtime_ = make_http_egress_runtime({"127.0.0.1:9001"});
    runtime_->listeners[0].config.protocol = Protocol::kHttp2;
    runtime_->listeners[0].upstream_h2 = ListenerRuntime::UpstreamH2::kPrior;
    start_worker(64);
    for (int fd : {kClientFd, kOtherClientFd}) {
      auto accept = ring_->last(Call::kAcceptMultishot);
      ASSERT_TRUE(accept.has_value());
      ring_->complete(accept->user_data, fd, /*more=*/true);
      turn();
    }
  }

  http::HttpStats& hstats() { return runtime_->http.stats->listeners[0][0]; }

  // Completes the one connect in flight; returns the upstream descriptor.
  int connect_ok() {
    auto connect = ring_->last(Call::kConnect);
    EXPECT_TRUE(connect.has_value());
    ring_->complete(connect->user_data, 0);
    turn();
    return connect->fd;
  }

  // What the worker sent the app, fed to it; and the app's answer fed back.
  void app_reads(App& app, int up) {
    std::string bytes = drain_sends(up);
    if (bytes.empty()) return;
    auto used = app.session.receive(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    EXPECT_TRUE(used.ok());
  }
  void app_writes(App& app, int up) {
    std::string out;
    app.session.produce(out);
    if (out.empty()) return;
    ring_->deliver(recv_token(up), out);
    turn();
  }
};

TEST_F(H2UpstreamTest, RequestsOfTwoClientsShareOneConnectionAsTwoStreams) {
  ring_->deliver(recv_token(kClientFd), "GET /a HTTP/1.1\r\nHost: svc\r\n\r\n");
  turn();
  ASSERT_EQ(ring_->count(Call::kConnect), 1u);
  // The second client's request waits for the same connection instead of opening one.
  ring_->deliver(recv_token(kOtherClientFd), "GET /b HTTP/1.1\r\nHost: svc\r\n\r\n");
  turn();
  EXPECT_EQ(ring_->count(Call::kConnect), 1u);
  const int up = connect_ok();
  App app;
  app_reads(app, up);
  ASSERT_EQ(app.order.size(), 2u);
  EXPECT_EQ(app.paths[app.order[0]], "/a");
  EXPECT_EQ(app.paths[app.order[1]], "/b");
  EXPECT_EQ(app.ended.size(), 2u);  // bodiless: END_STREAM with the HEADERS
  // Answers in the other order.
  app.answer(app.order[1], "bb");
  app.answer(app.order[0], "a");
  app_writes(app, up);
  const std::string to_b = drain_sends(kOtherClientFd);
  const std::string to_a = drain_sends(kClientFd);
  EXPECT_EQ(to_b.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << to_b;
  EXPECT_NE(to_b.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << to_b;
  EXPECT_NE(to_b.find("\r\n2\r\nbb\r\n0\r\n\r\n"), std::string::npos) << to_b;
  EXPECT_NE(to_a.find("\r\n1\r\na\r\n0\r\n\r\n"), std::string::npos) << to_a;
  EXPECT_EQ(hstats().request_active.get(), 0);
  EXPECT_EQ(hstats().upstream_cx_total.get(), 1u);

  // The next request takes a third stream on the same connection.
  ring_->deliver(recv_token(kClientFd), "GET /c HTTP/1.1\r\nHost: svc\r\n\r\n");
  turn();
  EXPECT_EQ(ring_->count(Call::kConnect), 1u);
  app_reads(app, up);
  EXPECT_EQ(app.order.size(), 3u);
}

TEST_F(H2UpstreamTest, RefusedStreamIsSentAgainWithItsBody) {
  ring_->deliver(recv_token(kClientFd),
                 "POST /p HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\n\r\nhello");
  turn();
  const int up = connect_ok();
  App app;
  app_reads(app, up);
  ASSERT_EQ(app.order.size(), 1u);
  EXPECT_EQ(app.bodies[app.order[0]], "hello");
  app.session.reset(app.order[0], http2::kRefusedStream);
  app_writes(app, up);
  // Sent again on a new stream of the same connection, body included; not a counted retry.
  EXPECT_EQ(ring_->count(Call::kConnect), 1u);
  app_reads(app, up);
  ASSERT_EQ(app.order.size(), 2u);
  EXPECT_EQ(app.bodies[app.order[1]], "hello");
  app.answer(app.order[1], "ok");
  app_writes(app, up);
  EXPECT_NE(drain_sends(kClientFd).find("ok"), std::string::npos);
  EXPECT_EQ(hstats().request_retry_count.get(), 0u);
  EXPECT_EQ(runtime_->stats->listeners[0][0].h2_upstream_resets_received.get(), 1u);
  EXPECT_EQ(runtime_->stats->listeners[0][0].h2_upstream_streams_active.get(), 0);
}

TEST_F(H2UpstreamTest, ClientGoneCancelsOnlyItsStream) {
  ring_->deliver(recv_token(kClientFd), "GET /a HTTP/1.1\r\nHost: svc\r\n\r\n");
  ring_->deliver(recv_token(kOtherClientFd), "GET /b HTTP/1.1\r\nHost: svc\r\n\r\n");
  turn();
  const int up = connect_ok();
  App app;
  app_reads(app, up);
  ASSERT_EQ(app.order.size(), 2u);
  ring_->complete(recv_token(kClientFd), -ECONNRESET);  // client A is gone
  turn();
  app_reads(app, up);
  EXPECT_EQ(app.resets[app.order[0]], http2::kCancel);
  app.answer(app.order[1], "b");
  app_writes(app, up);
  EXPECT_NE(drain_sends(kOtherClientFd).find("\r\n1\r\nb\r\n"), std::string::npos);
  EXPECT_EQ(hstats().request_active.get(), 0);
  EXPECT_EQ(runtime_->stats->listeners[0][0].h2_upstream_resets_sent.get(), 1u);
}

}  // namespace
}  // namespace ringside::proxy
