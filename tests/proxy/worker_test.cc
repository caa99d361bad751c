// The worker's connection handling driven through FakeRing: every completion a kernel
// could deliver (short reads, resets, cancellations, buffer exhaustion, refused
// connects) is injected by hand, and the operations the worker prepares are checked.
#include "proxy/worker.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <thread>

#include "fake_worker.h"
#include "test_cluster.h"

namespace ringside::proxy {
namespace {

// A descriptor the test owns, closed when it goes out of scope.
struct OwnedFd {
  explicit OwnedFd(int f) : fd(f) {}
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd() {
    if (fd >= 0) ::close(fd);
  }
  int fd;
};

// A listening socket on 127.0.0.1, to make real loopback TCP connections: what the
// worker does to a socket with a direct syscall (shutdown(2)) only a peer can see.
class LoopbackListener {
 public:
  LoopbackListener() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    EXPECT_EQ(::bind(fd_.fd, reinterpret_cast<sockaddr*>(&address), length), 0);
    EXPECT_EQ(::listen(fd_.fd, 4), 0);
    EXPECT_EQ(::getsockname(fd_.fd, reinterpret_cast<sockaddr*>(&address_), &length), 0);
  }

  // Connects fd (blocking or not) here; returns the accepted end once connected.
  int connect_and_accept(int fd) {
    int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&address_), sizeof(address_));
    EXPECT_TRUE(rc == 0 || errno == EINPROGRESS) << std::strerror(errno);
    int accepted = ::accept4(fd_.fd, nullptr, nullptr, SOCK_CLOEXEC);
    EXPECT_GE(accepted, 0) << std::strerror(errno);
    pollfd writable{.fd = fd, .events = POLLOUT, .revents = 0};
    EXPECT_EQ(::poll(&writable, 1, 5000), 1);
    return accepted;
  }

 private:
  OwnedFd fd_;
  sockaddr_in address_{};
};

enum class PeerSees { kNothing, kData, kEof };

std::ostream& operator<<(std::ostream& out, PeerSees seen) {
  const char* names[] = {"nothing", "data", "end of stream"};
  return out << names[static_cast<int>(seen)];
}

// What a socket's reader sees within wait_ms: nothing yet, data, or the end of the stream.
PeerSees peer_sees(int fd, int wait_ms) {
  pollfd readable{.fd = fd, .events = POLLIN, .revents = 0};
  if (::poll(&readable, 1, wait_ms) != 1) return PeerSees::kNothing;
  char c;
  ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return PeerSees::kEof;
  return n > 0 ? PeerSees::kData : PeerSees::kNothing;
}

class WorkerTest : public FakeWorkerTest {
 protected:
  // A relayed connection whose two sockets are real loopback connections (the sends stay
  // fake): what the worker does with a direct syscall, shutdown(2), only a peer can see.
  // `client` and `upstream` are the far ends the test reads from.
  struct LoopbackConnection {
    explicit LoopbackConnection(WorkerTest& test)
        : client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)),
          client_fd(listener.connect_and_accept(client.fd)),
          connect(test.accept_client(client_fd)),
          upstream(listener.connect_and_accept(connect.fd)) {
      test.ring_->complete(connect.user_data, 0);
      test.turn();
    }
    LoopbackListener listener;
    OwnedFd client;
    int client_fd;
    FakeRing::Op connect;
    OwnedFd upstream;
  };

  void SetUp() override { make_worker({"127.0.0.1:9001", "127.0.0.1:9002"}); }

  void make_worker(const std::vector<std::string>& endpoints, uint64_t max_pending = 64 * 1024,
                   cluster::OutlierPolicy policy = {}) {
    stop_worker();  // the worker of SetUp refers to the runtime replaced here
    runtime_ = std::make_unique<Runtime>();
    runtime_->config.max_pending_bytes = max_pending;
    ListenerConfig listener;
    listener.kind = ListenerKind::kEgress;
    listener.name = "egress_test";
    listener.listen = *SocketAddress::parse_numeric("127.0.0.1:1");
    listener.service = "svc";
    listener.tls = false;  // plaintext both ways: the relay logic without TLS
    WorkerQuiescence quiescence;
    quiescence.workers = 1;
    quiescence.epoch = [this](unsigned) { return worker_ ? worker_->quiescent_epoch() : 0; };
    Cluster* svc = add_test_cluster(*runtime_, "svc", endpoints, policy, std::move(quiescence));
    cluster_ = svc->endpoints;
    ListenerRuntime lr;
    lr.config = listener;
    lr.cluster = svc;
    runtime_->listeners.push_back(lr);
    runtime_->stats = std::make_unique<StatsRegistry>(1, std::vector<std::string>{"egress_test"});
    start_worker(8);
  }

  void set_endpoints(const std::vector<std::string>& endpoints) {
    std::vector<cluster::DiscoveredEndpoint> found;
    for (const auto& e : endpoints) {
      found.push_back({*SocketAddress::parse_numeric(e), EndpointSourceKind::kStatic});
    }
    cluster_->update(found);
  }

  static uint16_t port_of(const FakeRing::Op& op) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&op.addr)->sin_port);
  }

  ListenerStats& stats() { return runtime_->stats->listeners[0][0]; }

  // Accepts client_fd and returns the connect to the first endpoint tried.
  FakeRing::Op accept_client(int client_fd = kClientFd) {
    auto accept = ring_->last(Call::kAcceptMultishot);
    EXPECT_TRUE(accept.has_value());
    ring_->complete(accept->user_data, client_fd, /*more=*/true);
    turn();
    auto connect = ring_->last(Call::kConnect);
    EXPECT_TRUE(connect.has_value());
    return *connect;
  }

  // The kernel answers every cancel request.
  void complete_cancels() {
    for (const auto& op : ring_->ops()) {
      if ((op.call == Call::kCancelFd || op.call == Call::kCancel) && ring_->armed(op.user_data)) {
        ring_->complete(op.user_data, 0);
      }
    }
  }

  cluster::Cluster* cluster_ = nullptr;
};

TEST_F(WorkerTest, RelaysBytesBothWaysAfterConnect) {
  FakeRing::Op connect = accept_client();
  EXPECT_EQ(stats().cx_total.get(), 1u);
  EXPECT_EQ(stats().cx_active.get(), 1);
  int upstream_fd = connect.fd;
  ring_->complete(connect.user_data, 0);
  turn();
  uint64_t down_recv = recv_token(kClientFd);
  uint64_t up_recv = recv_token(upstream_fd);
  ASSERT_NE(down_recv, 0u);
  ASSERT_NE(up_recv, 0u);

  // A request split into two short reads arrives downstream: it goes upstream in order.
  ring_->deliver(down_recv, "GET / HT");
  turn();
  auto send = ring_->last(Call::kSend);
  ASSERT_TRUE(send.has_value());
  EXPECT_EQ(send->fd, upstream_fd);
  EXPECT_EQ(send->data, "GET / HT");
  ring_->deliver(down_recv, "TP/1.1\r\n\r\n");
  turn();
  // Only one send per socket in flight: the second part waits for the first to finish.
  EXPECT_EQ(ring_->count(Call::kSend), 1u);
  ring_->complete(send->user_data, static_cast<int32_t>(send->len));
  turn();
  send = ring_->last(Call::kSend);
  EXPECT_EQ(send->data, "TP/1.1\r\n\r\n");
  ring_->complete(send->user_data, static_cast<int32_t>(send->len));

  ring_->deliver(up_recv, "HTTP/1.1 200 OK\r\n\r\n");
  turn();
  send = ring_->last(Call::kSend);
  EXPECT_EQ(send->fd, kClientFd);
  EXPECT_EQ(send->data, "HTTP/1.1 200 OK\r\n\r\n");
  EXPECT_EQ(stats().downstream_bytes_rx.get(), 18u);
  EXPECT_EQ(stats().upstream_bytes_tx.get(), 18u);
  EXPECT_EQ(ring_->bad_recycles(), 0u);
  EXPECT_EQ(ring_->buffers_out(), 0u);  // every delivered buffer went back
}

TEST_F(WorkerTest, PartialSendIsContinuedFromWhereItStopped) {
  FakeRing::Op connect = accept_client();
  ring_->complete(connect.user_data, 0);
  turn();
  ring_->deliver(recv_token(kClientFd), "abcdefgh");
  turn();
  auto send = ring_->last(Call::kSend);
  ring_->complete(send->user_data, 3);  // a short write
  turn();
  send = ring_->last(Call::kSend);
  EXPECT_EQ(send->data, "defgh");
}

TEST_F(WorkerTest, BytesQueuedBehindASendLeaveInOneGatheredSend) {
  FakeRing::Op connect = accept_client();
  ring_->complete(connect.user_data, 0);
  turn();
  uint64_t down_recv = recv_token(kClientFd);
  ring_->deliver(down_recv, "head");
  turn();
  auto first = ring_->last(Call::kSend);
  ASSERT_TRUE(first.has_value());
  // While the first send is in flight, 24000 more bytes arrive (6 provided buffers):
  // they queue in two chunks.
  std::string rest;
  for (int i = 0; i < 24000; ++i) rest.push_back(static_cast<char>('a' + i % 26));
  ring_->deliver(down_recv, rest);
  turn();
  EXPECT_EQ(ring_->count(Call::kSend), 1u);
  // That send was submitted in an earlier turn: its completion is an event the loop
  // waits for anyway.
  EXPECT_EQ(ring_->send_awaited_calls(), 0u);
  ring_->complete(first->user_data, static_cast<int32_t>(first->len));
  turn();
  // One send carries all of it, not one send per chunk.
  EXPECT_EQ(ring_->count(Call::kSend), 2u);
  auto second = ring_->last(Call::kSend);
  EXPECT_EQ(second->data.size(), rest.size());
  EXPECT_TRUE(second->data == rest);
  EXPECT_EQ(second->parts, 2u);
  // A short write of a gathered send continues from the byte where it stopped.
  ring_->complete(second->user_data, 20000);
  turn();
  auto third = ring_->last(Call::kSend);
  EXPECT_TRUE(third->data == rest.substr(20000));
  ring_->complete(third->user_data, static_cast<int32_t>(third->len));
  turn();
  EXPECT_EQ(stats().upstream_bytes_tx.get(), 24004u);
  EXPECT_EQ(ring_->buffers_out(), 0u);
}

TEST_F(WorkerTest, UpstreamResetClosesBothSidesAndReleasesTheSlot) {
  FakeRing::Op connect = accept_client();
  ring_->complete(connect.user_data, 0);
  turn();
  uint64_t up_recv = recv_token(connect.fd);
  ring_->complete(up_recv, -ECONNRESET);
  turn();
  EXPECT_EQ(stats().cx_reset.get(), 1u);
  // The downstream recv is still armed: the worker cancels it before closing.
  EXPECT_GE(ring_->count(Call::kCancelFd), 1u);
  EXPECT_EQ(worker_->live_connections(), 1);
  for (uint64_t token : ring_->armed_on(kClientFd)) ring_->complete(token, -ECANCELED);
  complete_cancels();
  turn();
  turn();
  EXPECT_EQ(worker_->live_connections(), 0);
  EXPECT_EQ(stats().cx_active.get(), 0);
  // Both descriptors are closed through the ring.
  bool closed_client = false;
  for (const auto& op : ring_->ops())
    closed_client |= op.call == Call::kClose && op.fd == kClientFd;
  EXPECT_TRUE(closed_client);
}

TEST_F(WorkerTest, StaleCompletionAfterReleaseOnlyRecyclesItsBuffer) {
  FakeRing::Op connect = accept_client();
  ring_->complete(connect.user_data, 0);
  turn();
  uint64_t down_recv = recv_token(kClientFd);
  uint64_t up_recv = recv_token(connect.fd);
  ring_->complete(up_recv, -ECONNRESET);
  turn();
  ring_->complete(down_recv, -ECANCELED);
  complete_cancels();
  turn();
  turn();
  ASSERT_EQ(worker_->live_connections(), 0);
  // A late multishot completion carrying data for the dead connection.
  ring_->complete(down_recv, 5, /*more=*/true, "late!");
  turn();
  EXPECT_EQ(ring_->bad_recycles(), 0u);
  EXPECT_EQ(ring_->buffers_out(), 0u);
}

TEST_F(WorkerTest, RefusedConnectTriesTheNextEndpointThenGivesUp) {
  FakeRing::Op first = accept_client();
  ring_->complete(first.user_data, -ECONNREFUSED);
  turn();
  auto second = ring_->last(Call::kConnect);
  ASSERT_TRUE(second.has_value());
  EXPECT_NE(second->user_data, first.user_data);
  auto* a = reinterpret_cast<const sockaddr_in*>(&first.addr);
  auto* b = reinterpret_cast<const sockaddr_in*>(&second->addr);
  EXPECT_NE(a->sin_port, b->sin_port);  // the other endpoint
  ring_->complete(second->user_data, -ECONNREFUSED);
  turn();
  turn();
  EXPECT_EQ(stats().upstream_cx_connect_fail.get(), 2u);
  EXPECT_EQ(worker_->live_connections(), 0);  // the client is closed, not left hanging
}

TEST_F(WorkerTest, ConnectFailuresEjectAnEndpointAndNewConnectionsSkipIt) {
  cluster::OutlierPolicy policy;
  policy.consecutive_connect_failures = 2;
  policy.ejection_ms = 60000;
  make_worker({"127.0.0.1:9001", "127.0.0.1:9002"}, 64 * 1024, policy);
  // Every connection to 9001 is refused; each then succeeds on 9002.
  auto accept = ring_->last(Call::kAcceptMultishot);
  ASSERT_TRUE(accept.has_value());
  std::vector<uint16_t> first_tries;
  for (int i = 0; i < 4; ++i) {
    ring_->complete(accept->user_data, kClientFd + 1 + i, /*more=*/true);
    turn();
    FakeRing::Op connect = *ring_->last(Call::kConnect);
    first_tries.push_back(port_of(connect));
    if (port_of(connect) == 9001) {
      ring_->complete(connect.user_data, -ECONNREFUSED);
      turn();
      connect = *ring_->last(Call::kConnect);
      ASSERT_EQ(port_of(connect), 9002);  // the retry takes the next endpoint
    }
    ring_->complete(connect.user_data, 0);
    turn();
  }
  // Round robin tried 9001 twice (then ejected it), and never again.
  EXPECT_EQ(first_tries, (std::vector<uint16_t>{9001, 9002, 9001, 9002}));
  ring_->complete(accept->user_data, kClientFd + 10, /*more=*/true);
  turn();
  EXPECT_EQ(port_of(*ring_->last(Call::kConnect)), 9002);
  ring_->complete(accept->user_data, kClientFd + 11, /*more=*/true);
  turn();
  EXPECT_EQ(port_of(*ring_->last(Call::kConnect)), 9002);
  const std::string json = cluster_->render_json(monotonic_ms());
  EXPECT_NE(json.find("\"address\":\"127.0.0.1:9001\",\"source\":\"static\",\"state\":\"ejected\""),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"connect_failed\":2"), std::string::npos) << json;
}

TEST_F(WorkerTest, RemovedEndpointDrainsItsConnectionsAndGetsNoNewOnes) {
  make_worker({"127.0.0.1:9001"});
  FakeRing::Op connect = accept_client();
  ASSERT_EQ(port_of(connect), 9001);
  const int upstream_fd = connect.fd;
  ring_->complete(connect.user_data, 0);
  turn();
  // 9001 leaves the set, 9002 joins: the open connection keeps relaying.
  set_endpoints({"127.0.0.1:9002"});
  for (int i = 0; i < 3; ++i) turn();
  cluster_->collect();
  EXPECT_EQ(cluster_->pending(), 1u);  // the old sets are freed; the endpoint is still held
  ring_->deliver(recv_token(kClientFd), "still here");
  turn();
  auto send = ring_->last(Call::kSend);
  ASSERT_TRUE(send.has_value());
  EXPECT_EQ(send->fd, upstream_fd);
  EXPECT_EQ(send->data, "still here");
  std::string json = cluster_->render_json(monotonic_ms());
  EXPECT_NE(json.find("\"127.0.0.1:9001\",\"source\":\"static\",\"state\":\"draining\""),
            std::string::npos)
      << json;
  // A new connection goes to 9002.
  auto accept = ring_->last(Call::kAcceptMultishot);
  ring_->complete(accept->user_data, kClientFd + 1, /*more=*/true);
  turn();
  EXPECT_EQ(port_of(*ring_->last(Call::kConnect)), 9002);
  // Once the drained connection closes, the endpoint is freed.
  ring_->complete(send->user_data, static_cast<int32_t>(send->len));
  ring_->complete(recv_token(upstream_fd), -ECONNRESET);
  turn();
  for (uint64_t token : ring_->armed_on(kClientFd)) ring_->complete(token, -ECANCELED);
  complete_cancels();
  turn();
  turn();
  EXPECT_EQ(worker_->live_connections(), 1);  // the one to 9002
  EXPECT_EQ(cluster_->collect(), 1u);
  EXPECT_EQ(cluster_->pending(), 0u);
  json = cluster_->render_json(monotonic_ms());
  EXPECT_EQ(json.find("9001"), std::string::npos) << json;
}

TEST_F(WorkerTest, ServiceWithoutEndpointsClosesTheClient) {
  make_worker({});
  auto accept = ring_->last(Call::kAcceptMultishot);
  ring_->complete(accept->user_data, kClientFd, /*more=*/true);
  turn();
  turn();
  EXPECT_FALSE(ring_->last(Call::kConnect).has_value());
  EXPECT_EQ(stats().upstream_cx_connect_fail.get(), 1u);
  EXPECT_EQ(cluster_->no_endpoint(0), 1u);
  EXPECT_EQ(worker_->live_connections(), 0);
}

TEST_F(WorkerTest, BufferExhaustionReArmsTheRecvLater) {
  FakeRing::Op connect = accept_client();
  ring_->complete(connect.user_data, 0);
  turn();
  uint64_t down_recv = recv_token(kClientFd);
  size_t arms_before = ring_->count(Call::kRecvMultishot);
  ring_->complete(down_recv, -ENOBUFS, /*more=*/false);
  turn();
  EXPECT_EQ(runtime_->stats->workers[0].buffer_exhausted.get(), 1u);
  // Buffers are free in the fake ring, so the next turn re-arms the recv.
  turn();
  EXPECT_EQ(ring_->count(Call::kRecvMultishot), arms_before + 1);
  EXPECT_EQ(worker_->live_connections(), 1);
}

TEST_F(WorkerTest, SlowReaderPausesTheOtherSideAndResumesWhenDrained) {
  make_worker({"127.0.0.1:9001"}, /*max_pending=*/8 * 1024);
  FakeRing::Op connect = accept_client();
  ring_->complete(connect.user_data, 0);
  turn();
  uint64_t down_recv = recv_token(kClientFd);
  std::string block(4000, 'x');
  for (int i = 0; i < 3; ++i) {
    ring_->deliver(down_recv, block);
    turn();
  }
  // 12000 bytes queued for an upstream that has not acknowledged its first send: the
  // downstream recv is cancelled (back-pressure) instead of buffering without limit.
  auto cancel = ring_->last(Call::kCancel);
  ASSERT_TRUE(cancel.has_value());
  EXPECT_EQ(cancel->target, down_recv);
  ring_->complete(down_recv, -ECANCELED);
  ring_->complete(cancel->user_data, 0);
  turn();
  size_t arms = ring_->count(Call::kRecvMultishot);
  // The upstream drains: the downstream recv is armed again.
  for (int i = 0; i < 10; ++i) {
    auto send = ring_->last(Call::kSend);
    if (!ring_->armed(send->user_data)) break;
    ring_->complete(send->user_data, static_cast<int32_t>(send->len));
    turn();
  }
  EXPECT_GT(ring_->count(Call::kRecvMultishot), arms);
  EXPECT_EQ(worker_->live_connections(), 1);
}

TEST_F(WorkerTest, HalfCloseIsRelayedAfterQueuedBytes) {
  // Real loopback connections on both sides (the sends stay fake): the half-close is a
  // shutdown(2) on the socket, which the test sees as its peer reading the end of stream.
  LoopbackConnection both(*this);
  uint64_t down_recv = recv_token(both.client_fd);
  uint64_t up_recv = recv_token(both.connect.fd);
  ring_->deliver(down_recv, "last words");
  ring_->complete(down_recv, 0, /*more=*/false);  // client's FIN
  turn();
  auto send = ring_->last(Call::kSend);
  ASSERT_TRUE(send.has_value());
  EXPECT_EQ(send->fd, both.connect.fd);
  EXPECT_EQ(send->data, "last words");
  // The FIN waits behind the bytes still being sent, which went out in this turn
  // counted on completing inline: the ring is told that their completion is awaited,
  // or the FIN would wait for some other event.
  EXPECT_EQ(send->hint, IoRing::SendHint::kLikelyInline);
  EXPECT_EQ(ring_->send_awaited_calls(), 1u);
  EXPECT_EQ(peer_sees(both.upstream.fd, 20), PeerSees::kNothing);
  ring_->complete(send->user_data, static_cast<int32_t>(send->len));
  turn();
  // Sent: now the upstream reads the end of the request, and the connection stays open
  // for the answer.
  EXPECT_EQ(peer_sees(both.upstream.fd, 5000), PeerSees::kEof);
  EXPECT_EQ(worker_->live_connections(), 1);
  EXPECT_EQ(peer_sees(both.client.fd, 20), PeerSees::kNothing);
  // The upstream still answers, then closes: the client gets the answer, then FIN.
  ring_->deliver(up_recv, "reply");
  ring_->complete(up_recv, 0, /*more=*/false);
  turn();
  EXPECT_EQ(worker_->live_connections(), 1);  // the reply is still in flight
  send = ring_->last(Call::kSend);
  EXPECT_EQ(send->fd, both.client_fd);
  EXPECT_EQ(send->data, "reply");
  EXPECT_EQ(ring_->send_awaited_calls(), 2u);
  EXPECT_EQ(peer_sees(both.client.fd, 20), PeerSees::kNothing);
  ring_->complete(send->user_data, 5);
  turn();
  turn();
  EXPECT_EQ(peer_sees(both.client.fd, 5000), PeerSees::kEof);
  // Both directions ended and everything was delivered: the connection is closed.
  EXPECT_EQ(worker_->live_connections(), 0);
  EXPECT_EQ(stats().cx_active.get(), 0);
}

TEST_F(WorkerTest, ASendFollowedByAFinIsNotCountedOnCompletingInline) {
  LoopbackConnection both(*this);
  uint64_t down_recv = recv_token(both.client_fd);
  ring_->deliver(down_recv, "one");
  turn();
  auto first = ring_->last(Call::kSend);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->hint, IoRing::SendHint::kLikelyInline);
  // A later turn: more bytes and the client's FIN queue behind a send of an earlier
  // turn, whose completion the loop waits for anyway.
  ring_->deliver(down_recv, "two");
  ring_->complete(down_recv, 0, /*more=*/false);
  turn();
  EXPECT_EQ(ring_->count(Call::kSend), 1u);
  EXPECT_EQ(ring_->send_awaited_calls(), 0u);
  ring_->complete(first->user_data, static_cast<int32_t>(first->len));
  turn();
  // The last bytes leave with the FIN due after them: that send is waited for.
  auto second = ring_->last(Call::kSend);
  EXPECT_EQ(second->data, "two");
  EXPECT_EQ(second->hint, IoRing::SendHint::kMayWait);
  EXPECT_EQ(peer_sees(both.upstream.fd, 20), PeerSees::kNothing);  // (sends are fake)
  ring_->complete(second->user_data, static_cast<int32_t>(second->len));
  turn();
  EXPECT_EQ(peer_sees(both.upstream.fd, 5000), PeerSees::kEof);
}

TEST_F(WorkerTest, TwoReadsInOneTurnWaitForTheFirstSendsCompletion) {
  FakeRing::Op connect = accept_client();
  ring_->complete(connect.user_data, 0);
  turn();
  uint64_t down_recv = recv_token(kClientFd);
  ring_->deliver(down_recv, "one");
  ring_->deliver(down_recv, "two");
  turn();
  // "one" went out counted as inline; "two" waits behind it, so the ring must wake for
  // that send's completion instead of sleeping past it.
  EXPECT_EQ(ring_->count(Call::kSend), 1u);
  EXPECT_EQ(ring_->send_awaited_calls(), 1u);
  auto first = ring_->last(Call::kSend);
  ring_->complete(first->user_data, static_cast<int32_t>(first->len));
  turn();
  EXPECT_EQ(ring_->last(Call::kSend)->data, "two");
  EXPECT_EQ(ring_->send_awaited_calls(), 1u);
}

TEST_F(WorkerTest, DescriptorShortagePausesAcceptThenTheRetryTimerResumesIt) {
  auto accept = ring_->last(Call::kAcceptMultishot);
  ASSERT_TRUE(accept.has_value());
  ring_->complete(accept->user_data, -EMFILE, /*more=*/false);
  turn();
  EXPECT_EQ(runtime_->stats->workers[0].accept_paused.get(), 1u);
  const size_t accepts = ring_->count(Call::kAcceptMultishot);
  turn();
  // Not re-armed at once: that would spin on a full descriptor table.
  EXPECT_EQ(ring_->count(Call::kAcceptMultishot), accepts);
  // But a timer will: a turn allowed to wait a minute waits at most the retry delay.
  ASSERT_TRUE(worker_->turn(60'000));
  EXPECT_GT(ring_->last_timeout_ns(), 0);
  EXPECT_LE(ring_->last_timeout_ns(), 100'000'000);
  // Once it is due (real time: the worker reads the monotonic clock), the listener
  // accepts again.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (ring_->count(Call::kAcceptMultishot) == accepts &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    turn();
  }
  ASSERT_GT(ring_->count(Call::kAcceptMultishot), accepts) << "accepting never resumed";
  auto again = ring_->last(Call::kAcceptMultishot);
  EXPECT_EQ(again->fd, kListenFd);
  ring_->complete(again->user_data, kClientFd, /*more=*/true);
  turn();
  EXPECT_EQ(worker_->live_connections(), 1);
  EXPECT_TRUE(ring_->last(Call::kConnect).has_value());
}

}  // namespace
}  // namespace ringside::proxy
