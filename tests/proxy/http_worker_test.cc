// The worker's HTTP/1.1 path (protocol=http) driven through FakeRing: pooling and the
// keep-alive race, pipelining order, retries, refused requests and back-to-zero accounting,
// each completion injected by hand so every interleaving is deterministic.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <string>

#include "fake_worker.h"
#include "test_cluster.h"

namespace ringside::proxy {
namespace {

const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

class HttpWorkerTest : public FakeWorkerTest {
 protected:
  void SetUp() override {
    runtime_ = make_http_egress_runtime({"127.0.0.1:9001"});
    start_worker(16);
    auto accept = ring_->last(Call::kAcceptMultishot);
    ASSERT_TRUE(accept.has_value());
    ring_->complete(accept->user_data, kClientFd, /*more=*/true);
    turn();
    client_recv_ = recv_token(kClientFd);
    ASSERT_NE(client_recv_, 0u);
  }

  http::HttpStats& hstats() { return runtime_->http.stats->listeners[0][0]; }
  ListenerStats& lstats() { return runtime_->stats->listeners[0][0]; }

  // Completes the newest connect and returns the upstream descriptor.
  int connect_ok() {
    auto connect = ring_->last(Call::kConnect);
    EXPECT_TRUE(connect.has_value());
    ring_->complete(connect->user_data, 0);
    turn();
    return connect->fd;
  }

  uint64_t client_recv_ = 0;
};

TEST_F(HttpWorkerTest, KeepAliveReusesThePooledUpstreamConnection) {
  ring_->deliver(client_recv_, "GET /a HTTP/1.1\r\nHost: svc\r\n\r\n");
  turn();
  ASSERT_EQ(ring_->count(Call::kConnect), 1u);
  int up = connect_ok();
  EXPECT_EQ(drain_sends(up), "GET /a HTTP/1.1\r\nHost: svc\r\n\r\n");
  ring_->deliver(recv_token(up), kOk);
  turn();
  std::string answer = drain_sends(kClientFd);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
  EXPECT_NE(answer.find("server: ringside\r\n"), std::string::npos);
  EXPECT_EQ(answer.substr(answer.size() - 2), "ok");

  ring_->deliver(client_recv_, "GET /b HTTP/1.1\r\nHost: svc\r\n\r\n");
  turn();
  EXPECT_EQ(ring_->count(Call::kConnect), 1u);  // no new connection: the pooled one
  EXPECT_EQ(drain_sends(up), "GET /b HTTP/1.1\r\nHost: svc\r\n\r\n");
  EXPECT_EQ(hstats().request_count.get(), 2u);
  EXPECT_EQ(hstats().upstream_cx_total.get(), 1u);
}

// An idle keep-alive connection holds no HTTP state: at the end of the turn that answered
// its request, the connection gives its parser and exchange back to the worker's pool, and
// takes them again when the next request arrives.
TEST_F(HttpWorkerTest, IdleKeepAliveConnectionGivesItsStateBackToThePool) {
  EXPECT_EQ(worker_->pooled_http_states(), 0u);
  ring_->deliver(client_recv_, "GET /a HTTP/1.1\r\nHost: svc\r\n\r\n");
  turn();
  int up = connect_ok();
  EXPECT_EQ(drain_sends(up), "GET /a HTTP/1.1\r\nHost: svc\r\n\r\n");
  EXPECT_EQ(worker_->pooled_http_states(), 0u);  // the exchange is in progress
  ring_->deliver(recv_token(up), kOk);
  turn();
  EXPECT_EQ(drain_sends(kClientFd).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_EQ(worker_->pooled_http_states(), 1u);

  // Half a head: the connection holds its state (the parser keeps the bytes) until the
  // request is answered.
  ring_->deliver(client_recv_, "GET /b HTTP/1.1\r\nHo");
  turn();
  EXPECT_EQ(worker_->pooled_http_states(), 0u);
  ring_->deliver(client_recv_, "st: svc\r\n\r\n");
  turn();
  EXPECT_EQ(drain_sends(up), "GET /b HTTP/1.1\r\nHost: svc\r\n\r\n");
  ring_->deliver(recv_token(up), kOk);
  turn();
  std::string answer = drain_sends(kClientFd);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
  EXPECT_EQ(answer.substr(answer.size() - 2), "ok");
  EXPECT_EQ(worker_->pooled_http_states(), 1u);
  EXPECT_EQ(hstats().request_count.get(), 2u);
}

// An upstream connection serves an exchange, not a client connection: after client A's
// request, its pooled upstream and its pooled HTTP state (exchange included) go to client
// B, and B's response reaches B, not A.
TEST_F(HttpWorkerTest, PooledUpstreamAndExchangeServeTheNextClientConnection) {
  ring_->deliver(client_recv_, "GET /a HTTP/1.1\r\nHost: svc\r\n\r\n");
  turn();
  int up = connect_ok();
  EXPECT_EQ(drain_sends(up), "GET /a HTTP/1.1\r\nHost: svc\r\n\r\n");
  ring_->deliver(recv_token(up), kOk);
  turn();
  EXPECT_EQ(drain_sends(kClientFd).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_EQ(worker_->pooled_http_states(), 1u);

  constexpr int kOtherClientFd = kClientFd + 1;
  auto accept = ring_->last(Call::kAcceptMultishot);
  ASSERT_TRUE(accept.has_value());
  ring_->complete(accept->user_data, kOtherClientFd, /*more=*/true);
  turn();
  const uint64_t other_recv = recv_token(kOtherClientFd);
  ASSERT_NE(other_recv, 0u);
  ring_->deliver(other_recv, "GET /b HTTP/1.1\r\nHost: svc\r\n\r\n");
  turn();
  EXPECT_EQ(worker_->pooled_http_states(), 0u);  // B took A's state
  EXPECT_EQ(ring_->count(Call::kConnect), 1u);   // and A's upstream connection
  EXPECT_EQ(drain_sends(up), "GET /b HTTP/1.1\r\nHost: svc\r\n\r\n");
  ring_->deliver(recv_token(up), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nbb");
  turn();
  EXPECT_EQ(drain_sends(kClientFd), "");
  std::string answer = drain_sends(kOtherClientFd);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
  EXPECT_EQ(answer.substr(answer.size() - 2), "bb");
  EXPECT_EQ(hstats().request_count.get(), 2u);
  EXPECT_EQ(hstats().request_active.get(), 0);
  EXPECT_EQ(hstats().upstream_cx_total.get(), 1u);
}

TEST_F(HttpWorkerTest, HeadAndBodyReadTogetherLeaveInOneSendEachWay) {
  // A request with its body, and a response with its body, each arriving in one read:
  // each goes out in a single send (one segment for the reader), not the head first and
  // the body after the head's send completed.
  auto count_sends = [&](int fd) {
    size_t n = 0;
    for (const auto& op : ring_->ops()) n += op.call == Call::kSend && op.fd == fd;
    return n;
  };
  ring_->deliver(client_recv_, "POST /p HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\n\r\nhello");
  turn();
  int up = connect_ok();
  ASSERT_EQ(count_sends(up), 1u);
  EXPECT_EQ(ring_->last(Call::kSend)->data,
            "POST /p HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(drain_sends(up).size(), ring_->last(Call::kSend)->data.size());
  ring_->deliver(recv_token(up), "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nworld");
  turn();
  ASSERT_EQ(count_sends(kClientFd), 1u);
  std::string answer = ring_->last(Call::kSend)->data;
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
  EXPECT_EQ(answer.substr(answer.size() - 9), "\r\n\r\nworld") << answer;
  EXPECT_EQ(drain_sends(kClientFd), answer);
  EXPECT_EQ(count_sends(kClientFd), 1u);
}

TEST_F(HttpWorkerTest, TheLastResponseBeforeAClosingFinIsWaitedFor) {
  // Connection: close: the response leaves in one send and the FIN follows its
  // completion, so that send is not counted on completing inline (the loop must wake
  // for it, or the client would wait for the FIN until some other event).
  ring_->deliver(client_recv_, "GET /a HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n");
  turn();
  int up = connect_ok();
  EXPECT_EQ(drain_sends(up).rfind("GET /a HTTP/1.1\r\n", 0), 0u);
  ring_->deliver(recv_token(up), kOk);
  turn();
  auto response = ring_->last(Call::kSend);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->fd, kClientFd);
  EXPECT_EQ(response->data.substr(response->data.size() - 2), "ok");
  EXPECT_EQ(response->hint, IoRing::SendHint::kMayWait);
  EXPECT_EQ(ring_->count(Call::kSend), 2u);
}

TEST_F(HttpWorkerTest, AKeepAliveResponseIsCountedOnCompletingInline) {
  ring_->deliver(client_recv_, "GET /a HTTP/1.1\r\nHost: svc\r\n\r\n");
  turn();
  int up = connect_ok();
  drain_sends(up);
  ring_->deliver(recv_token(up), kOk);
  turn();
  auto response = ring_->last(Call::kSend);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->fd, kClientFd);
  EXPECT_EQ(response->hint, IoRing::SendHint::kLikelyInline);
}

TEST_F(HttpWorkerTest, EachRequestPicksAnEndpointAndReusesAConnectionToIt) {
  std::vector<cluster::DiscoveredEndpoint> two;
  for (const char* e : {"127.0.0.1:9001", "127.0.0.1:9002"}) {
    two.push_back({*SocketAddress::parse_numeric(e), EndpointSourceKind::kStatic});
  }
  ASSERT_TRUE(runtime_->services[0]->update(two));
  std::vector<uint16_t> connected;
  std::vector<int> fds;
  for (const char* path : {"/1", "/2", "/3", "/4"}) {
    const size_t connects = ring_->count(Call::kConnect);
    ring_->deliver(client_recv_, std::string("GET ") + path + " HTTP/1.1\r\nHost: svc\r\n\r\n");
    turn();
    int up;
    if (ring_->count(Call::kConnect) > connects) {
      auto connect = ring_->last(Call::kConnect);
      connected.push_back(ntohs(reinterpret_cast<const sockaddr_in*>(&connect->addr)->sin_port));
      up = connect_ok();
      fds.push_back(up);
    } else {
      up = fds[(path[1] - '1') % 2];  // the pooled connection to the endpoint picked
    }
    EXPECT_EQ(drain_sends(up), std::string("GET ") + path + " HTTP/1.1\r\nHost: svc\r\n\r\n");
    ring_->deliver(recv_token(up), kOk);
    turn();
    drain_sends(kClientFd);
  }
  // Round robin per request: one connection to each endpoint, each then reused.
  EXPECT_EQ(connected, (std::vector<uint16_t>{9001, 9002}));
  EXPECT_EQ(hstats().upstream_cx_total.get(), 2u);
  EXPECT_EQ(hstats().request_count.get(), 4u);
}

TEST_F(HttpWorkerTest, PooledConnectionClosedByTheUpstreamIsRetriedTransparently) {
  ring_->deliver(client_recv_, "POST /a HTTP/1.1\r\nHost: svc\r\nContent-Length: 3\r\n\r\none");
  turn();
  int up = connect_ok();
  drain_sends(up);
  ring_->deliver(recv_token(up), kOk);
  turn();
  drain_sends(kClientFd);
  // The next request goes out on the pooled connection at the moment the upstream
  // closes it (its idle timeout): the FIN arrives with no response byte.
  ring_->deliver(client_recv_, "POST /b HTTP/1.1\r\nHost: svc\r\nContent-Length: 3\r\n\r\ntwo");
  turn();
  EXPECT_EQ(ring_->count(Call::kConnect), 1u);
  drain_sends(up);
  ring_->complete(recv_token(up), 0, /*more=*/false);
  turn();
  // Not a 503: a fresh connection carries the request again, even a POST.
  ASSERT_EQ(ring_->count(Call::kConnect), 2u);
  int fresh = connect_ok();
  EXPECT_NE(fresh, up);
  const std::string again = drain_sends(fresh);
  EXPECT_EQ(again.find("POST /b HTTP/1.1\r\n"), 0u) << again;
  EXPECT_EQ(again.substr(again.size() - 7), "\r\n\r\ntwo") << again;  // its body, replayed
  ring_->deliver(recv_token(fresh), kOk);
  turn();
  EXPECT_EQ(drain_sends(kClientFd).rfind("HTTP/1.1 200 OK", 0), 0u);
  EXPECT_EQ(hstats().request_retry_count.get(), 0u);  // the race does not count
  EXPECT_EQ(hstats().http_code_proxy_5xx_count.get(), 0u);
}

TEST_F(HttpWorkerTest, PipelinedRequestsGoUpstreamOneAtATimeInOrder) {
  ring_->deliver(client_recv_,
                 "GET /1 HTTP/1.1\r\nHost: svc\r\n\r\nGET /2 HTTP/1.1\r\nHost: svc\r\n\r\n");
  turn();
  int up = connect_ok();
  EXPECT_EQ(drain_sends(up), "GET /1 HTTP/1.1\r\nHost: svc\r\n\r\n");
  ring_->deliver(recv_token(up), "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1");
  turn();
  // Only after the first response is the second request parsed and forwarded.
  EXPECT_EQ(drain_sends(up), "GET /2 HTTP/1.1\r\nHost: svc\r\n\r\n");
  ring_->deliver(recv_token(up), "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2");
  turn();
  std::string answers = drain_sends(kClientFd);
  size_t first = answers.find("\r\n\r\n1");
  size_t second = answers.find("\r\n\r\n2");
  ASSERT_NE(first, std::string::npos) << answers;
  ASSERT_NE(second, std::string::npos) << answers;
  EXPECT_LT(first, second);
}

TEST_F(HttpWorkerTest, SmugglingAttemptIsRefusedAndNothingGoesUpstream) {
  ring_->deliver(
      client_recv_,
      "POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\n"
      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: svc\r\n\r\n");
  turn();
  EXPECT_EQ(ring_->count(Call::kConnect), 0u);
  std::string answer = drain_sends(kClientFd);
  EXPECT_EQ(answer.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << answer;
  EXPECT_NE(answer.find("connection: close\r\n"), std::string::npos);
  EXPECT_EQ(answer.find("/admin"), std::string::npos);
  EXPECT_EQ(answer.find("HTTP/1.1", 1), std::string::npos);  // one response only
  EXPECT_EQ(hstats().http_code_proxy_4xx_count.get(), 1u);
}

TEST_F(HttpWorkerTest, RefusedEndpointsEndInA503AfterTheAllowedRetries) {
  ring_->deliver(client_recv_, "GET / HTTP/1.1\r\nHost: svc\r\n\r\n");
  turn();
  for (int i = 0; i < 3; ++i) {
    auto connect = ring_->last(Call::kConnect);
    ASSERT_TRUE(connect.has_value());
    ring_->complete(connect->user_data, -ECONNREFUSED);
    turn();
  }
  EXPECT_EQ(ring_->count(Call::kConnect), 3u);  // the first try and 2 retries
  std::string answer = drain_sends(kClientFd);
  EXPECT_EQ(answer.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0), 0u) << answer;
  EXPECT_NE(answer.find("upstream connect failure\n"), std::string::npos);
  EXPECT_EQ(hstats().request_retry_count.get(), 2u);
  EXPECT_EQ(hstats().request_retry_limit_exceeded.get(), 1u);
  EXPECT_EQ(lstats().upstream_cx_connect_fail.get(), 3u);
}

TEST_F(HttpWorkerTest, A503IsRetriedForGetButForwardedForPost) {
  ring_->deliver(client_recv_, "GET / HTTP/1.1\r\nHost: svc\r\n\r\n");
  turn();
  int up = connect_ok();
  drain_sends(up);
  ring_->deliver(recv_token(up), "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
  turn();
  ASSERT_EQ(ring_->count(Call::kConnect), 2u);  // retried on another connection
  int second = connect_ok();
  drain_sends(second);
  ring_->deliver(recv_token(second), kOk);
  turn();
  EXPECT_EQ(drain_sends(kClientFd).rfind("HTTP/1.1 200 OK", 0), 0u);
  EXPECT_EQ(hstats().request_retry_count.get(), 1u);

  ring_->deliver(client_recv_, "POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 2\r\n\r\nhi");
  turn();
  drain_sends(second);
  ring_->deliver(recv_token(second),
                 "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
  turn();
  EXPECT_EQ(ring_->count(Call::kConnect), 2u);  // not replayed
  EXPECT_EQ(drain_sends(kClientFd).rfind("HTTP/1.1 503 Service Unavailable", 0), 0u);
}

TEST_F(HttpWorkerTest, BodyArrivingDuringA503RetryFollowsTheHeadOnTheNewConnection) {
  // A PUT's head goes out, the upstream answers 503 before the body came: the retry's
  // connection is still being made when the body arrives, and it must get the head first.
  ring_->deliver(client_recv_, "PUT /p HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\n\r\n");
  turn();
  int first = connect_ok();
  EXPECT_EQ(drain_sends(first), "PUT /p HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\n\r\n");
  ring_->deliver(recv_token(first),
                 "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
  turn();
  ASSERT_EQ(ring_->count(Call::kConnect), 2u);  // retried on a new connection
  ring_->deliver(client_recv_, "hello");
  turn();
  int second = connect_ok();
  EXPECT_EQ(drain_sends(second), "PUT /p HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\n\r\nhello");
  ring_->deliver(recv_token(second), kOk);
  turn();
  EXPECT_EQ(drain_sends(kClientFd).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_EQ(hstats().request_retry_count.get(), 1u);
}

TEST_F(HttpWorkerTest, ChunkedRequestBodyIsReframedUpstream) {
  ring_->deliver(client_recv_,
                 "POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "3;ext=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n");
  turn();
  int up = connect_ok();
  std::string sent = drain_sends(up);
  EXPECT_NE(sent.find("Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n"),
            std::string::npos)
      << sent;
  EXPECT_EQ(sent.find("ext=1"), std::string::npos);  // extensions are dropped
}

TEST_F(HttpWorkerTest, EarlyResponseKeepsForwardingTheBodyAndTheConnection) {
  ring_->deliver(client_recv_, "POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 10\r\n\r\nabc");
  turn();
  int up = connect_ok();
  drain_sends(up);
  // The upstream answers before the body is complete (nginx's `return`, a 413).
  ring_->deliver(recv_token(up), "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
  turn();
  EXPECT_EQ(drain_sends(kClientFd).rfind("HTTP/1.1 201 Created", 0), 0u);
  ring_->deliver(client_recv_, "defghij");
  turn();
  EXPECT_EQ(drain_sends(up), "defghij");  // the rest of the body still goes upstream
  ring_->deliver(client_recv_, "GET /next HTTP/1.1\r\nHost: svc\r\n\r\n");
  turn();
  EXPECT_EQ(ring_->count(Call::kConnect), 1u);  // the same connection serves the next one
  EXPECT_EQ(drain_sends(up), "GET /next HTTP/1.1\r\nHost: svc\r\n\r\n");
}

TEST_F(HttpWorkerTest, EarlyCloseResponseResumesAClientPausedByBackPressure) {
  // The upstream stops reading a large body (its queue passes the limit, so the client's
  // reads are paused), then answers 413 with Connection: close. The rest of the body has
  // nowhere to go: the client must be read again (and the rest dropped), not left paused
  // until an idle timeout.
  runtime_->config.max_pending_bytes = 4096;
  ring_->deliver(client_recv_, "POST /big HTTP/1.1\r\nHost: svc\r\nContent-Length: 100000\r\n\r\n");
  turn();
  int up = connect_ok();
  ring_->deliver(client_recv_, std::string(12000, 'x'));
  turn();
  auto cancel = ring_->last(Call::kCancel);
  ASSERT_TRUE(cancel.has_value());  // back-pressure: the client's recv is cancelled
  ring_->complete(client_recv_, -ECANCELED);
  ring_->complete(cancel->user_data, 0);
  turn();
  ASSERT_EQ(recv_token(kClientFd), 0u);
  ring_->deliver(
      recv_token(up),
      "HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  turn();
  EXPECT_EQ(drain_sends(kClientFd).rfind("HTTP/1.1 413 Payload Too Large\r\n", 0), 0u);
  uint64_t again = recv_token(kClientFd);
  ASSERT_NE(again, 0u);  // reading (and dropping) the rest instead of staying paused
  ring_->deliver(again, std::string(4000, 'y'));
  turn();
  EXPECT_EQ(ring_->buffers_out(), 0u);
}

TEST_F(HttpWorkerTest, ClientEndingItsUploadAfterAnEarlyResponseStillGetsAllOfIt) {
  ring_->deliver(client_recv_, "POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 10\r\n\r\nabc");
  turn();
  int up = connect_ok();
  drain_sends(up);
  ring_->deliver(recv_token(up), "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n\r\nbig!");
  turn();
  auto answer = ring_->last(Call::kSend);
  ASSERT_TRUE(answer.has_value());
  ASSERT_EQ(answer->fd, kClientFd);
  // The client gives up its upload (EOF) while the answer is still being sent: that send
  // must finish, not be cancelled by an abort.
  ring_->complete(client_recv_, 0);
  turn();
  EXPECT_TRUE(ring_->armed(answer->user_data));
  for (const auto& op : ring_->ops()) {
    EXPECT_FALSE(op.call == Call::kCancelFd && op.fd == kClientFd) << "the client was aborted";
  }
  ring_->complete(answer->user_data, static_cast<int32_t>(answer->len));
  EXPECT_NE(answer->data.find("big!"), std::string::npos);
  // The unfinished upstream is let go (its recv cancelled); then both sides are closed.
  ring_->fail_armed(up, -ECANCELED);
  for (const auto& op : ring_->ops()) {
    if (op.call == Call::kCancelFd && ring_->armed(op.user_data)) ring_->complete(op.user_data, 0);
  }
  turn();
  EXPECT_EQ(worker_->live_connections(), 0);
}

TEST_F(HttpWorkerTest, ClientLeavingMidResponseFreesBothConnections) {
  ring_->deliver(client_recv_, "GET / HTTP/1.1\r\nHost: svc\r\n\r\n");
  turn();
  int up = connect_ok();
  drain_sends(up);
  ring_->deliver(recv_token(up), "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
  turn();
  EXPECT_EQ(worker_->live_connections(), 2);
  ring_->complete(client_recv_, -ECONNRESET, /*more=*/false);
  turn();
  for (int i = 0; i < 5; ++i) {
    for (const auto& op : ring_->ops()) {
      if (ring_->armed(op.user_data) && op.call != Call::kAcceptMultishot &&
          op.call != Call::kRead) {
        ring_->complete(op.user_data, -ECANCELED);
      }
    }
    turn();
  }
  EXPECT_EQ(worker_->live_connections(), 0);
  EXPECT_EQ(hstats().request_active.get(), 0);
  EXPECT_EQ(hstats().upstream_cx_active.get(), 0);
  EXPECT_EQ(lstats().cx_active.get(), 0);
}

// The client address as X-Forwarded-For and the access log show it.
TEST(FormatPeerTest, Ipv4Ipv6AndUnknown) {
  auto format = [](uint16_t family, std::initializer_list<uint8_t> addr, uint16_t port) {
    PeerAddress peer;
    peer.family = family;
    peer.port = port;
    std::copy(addr.begin(), addr.end(), peer.addr);
    std::string ip = "left over";
    format_peer_ip(peer, ip);
    return ip + " " + peer_address(peer);
  };
  EXPECT_EQ(format(AF_INET, {10, 0, 0, 1}, 5000), "10.0.0.1 10.0.0.1:5000");
  EXPECT_EQ(format(AF_INET, {0, 0, 0, 0}, 0), "0.0.0.0 0.0.0.0:0");
  EXPECT_EQ(format(AF_INET, {255, 255, 255, 255}, 65535), "255.255.255.255 255.255.255.255:65535");
  EXPECT_EQ(format(AF_INET, {127, 10, 100, 9}, 80), "127.10.100.9 127.10.100.9:80");
  EXPECT_EQ(format(AF_INET6, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 443),
            "::1 [::1]:443");
  EXPECT_EQ(format(0, {}, 0), " ");
  PeerAddress unknown;
  EXPECT_EQ(peer_label(unknown), "the local app");
  unknown.family = AF_INET;
  unknown.addr[0] = 192;
  unknown.port = 1;
  EXPECT_EQ(peer_label(unknown), "192.0.0.0:1");
}

}  // namespace
}  // namespace ringside::proxy
