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

}  // namespace
}  // namespace ringside::proxy
