// Tests of the io_uring IoRing against the real kernel, over loopback TCP and
// socketpairs. Skipped when io_uring is unavailable here.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "ringside/io.h"

namespace ringside {
namespace {

uint64_t token(uint32_t slot, OpCode op) { return Token{slot, 1, 0, op}.pack(); }

class UringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ring_ = make_ring(
        RingOptions{.sq_entries = 64, .cq_entries = 256, .buffer_count = 16, .buffer_size = 4096});
  }

  void TearDown() override {
    for (int fd : fds_) ::close(fd);
  }

  std::unique_ptr<IoRing> make_ring(const RingOptions& options) {
    auto ring = make_io_uring(options);
    if (!ring.ok()) {
      const Error& e = ring.error();
      if (e.sys_errno == EPERM || e.sys_errno == ENOSYS || e.sys_errno == EACCES) {
        return nullptr;
      }
      ADD_FAILURE() << e.what << " errno " << e.sys_errno;
      return nullptr;
    }
    return std::move(ring).value();
  }

  int track(int fd) {
    fds_.push_back(fd);
    return fd;
  }

  // A connected pair of stream sockets: [0] is driven through the ring, [1] directly.
  void socket_pair(int out[2]) {
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, out), 0);
    track(out[0]);
    track(out[1]);
  }

  // A loopback TCP listener on an ephemeral port.
  int listener(sockaddr_in* addr) {
    int fd = track(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    *addr = {};
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(addr), sizeof(*addr)), 0);
    EXPECT_EQ(::listen(fd, 64), 0);
    socklen_t len = sizeof(*addr);
    EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(addr), &len), 0);
    return fd;
  }

  // Returns the next `count` completions, reaping more as needed (completions reaped
  // beyond `count` wait in pending_ for the next call). The time limit only guards
  // against hangs; it is not a timing assertion.
  std::vector<Completion> wait_for(size_t count) {
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    Completion batch[16];
    while (pending_.size() < count && std::chrono::steady_clock::now() < give_up) {
      int ready = ring_->submit_and_wait(50'000'000);
      EXPECT_GE(ready, 0);
      unsigned n = ring_->reap(batch);
      pending_.insert(pending_.end(), batch, batch + n);
    }
    EXPECT_GE(pending_.size(), count);
    size_t take = std::min(count, pending_.size());
    std::vector<Completion> got(pending_.begin(), pending_.begin() + take);
    pending_.erase(pending_.begin(), pending_.begin() + take);
    return got;
  }

  Completion wait_one() {
    auto got = wait_for(1);
    return got.empty() ? Completion{} : got[0];
  }

  std::unique_ptr<IoRing> ring_;
  std::vector<int> fds_;
  std::deque<Completion> pending_;
};

#define SKIP_WITHOUT_URING()                                      \
  do {                                                            \
    if (ring_ == nullptr) GTEST_SKIP() << "io_uring unavailable"; \
  } while (0)

TEST_F(UringTest, DescribesSetupAndStartsWithAllBuffersFree) {
  SKIP_WITHOUT_URING();
  std::string d = ring_->describe();
  EXPECT_EQ(d.rfind("io_uring sq=64 cq=256 flags=", 0), 0u) << d;
  EXPECT_NE(d.find("bufs=16x4096"), std::string::npos) << d;
  EXPECT_EQ(ring_->buffer_size(), 4096u);
  EXPECT_EQ(ring_->buffers_free(), 16u);
  EXPECT_EQ(ring_->cq_overflow_events(), 0u);
}

TEST_F(UringTest, RejectsBufferCountThatIsNotAPowerOfTwo) {
  auto ring = make_io_uring(RingOptions{.buffer_count = 12});
  ASSERT_FALSE(ring.ok());
  EXPECT_EQ(ring.error().kind, ErrorKind::kConfig);
}

TEST_F(UringTest, WaitWithNothingPendingTimesOutWithZero) {
  SKIP_WITHOUT_URING();
  EXPECT_EQ(ring_->submit_and_wait(1'000'000), 0);
  EXPECT_EQ(ring_->submit_and_wait(0), 0);
  Completion c[4];
  EXPECT_EQ(ring_->reap(c), 0u);
}

TEST_F(UringTest, MultishotAcceptDeliversSeveralConnections) {
  SKIP_WITHOUT_URING();
  sockaddr_in addr;
  int lfd = listener(&addr);
  ASSERT_TRUE(ring_->accept_multishot(lfd, token(7, OpCode::kAccept)));
  ASSERT_EQ(ring_->submit_and_wait(0), 0);
  for (int i = 0; i < 3; ++i) {
    int c = track(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  }
  auto got = wait_for(3);
  for (const Completion& c : got) {
    EXPECT_EQ(c.user_data, token(7, OpCode::kAccept));
    ASSERT_GE(c.res, 0);
    EXPECT_TRUE(c.more);
    EXPECT_EQ(c.buffer_id, -1);
    track(c.res);
    EXPECT_NE(::fcntl(c.res, F_GETFD) & FD_CLOEXEC, 0);
  }
}

TEST_F(UringTest, MultishotRecvUsesProvidedBuffersAndRecycles) {
  SKIP_WITHOUT_URING();
  int sv[2];
  socket_pair(sv);
  const uint64_t tok = token(3, OpCode::kRecv);
  ASSERT_TRUE(ring_->recv_multishot(sv[0], tok));
  ASSERT_EQ(ring_->submit_and_wait(0), 0);
  for (std::string msg : {"first", "second message"}) {
    ASSERT_EQ(::write(sv[1], msg.data(), msg.size()), static_cast<ssize_t>(msg.size()));
    Completion c = wait_one();
    EXPECT_EQ(c.user_data, tok);
    ASSERT_EQ(c.res, static_cast<int>(msg.size()));
    EXPECT_TRUE(c.more);
    ASSERT_GE(c.buffer_id, 0);
    ASSERT_LT(c.buffer_id, 16);
    EXPECT_EQ(ring_->buffers_free(), 15u);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(ring_->buffer(c.buffer_id)), c.res), msg);
    ring_->recycle(static_cast<uint16_t>(c.buffer_id));
    EXPECT_EQ(ring_->buffers_free(), 16u);
  }
  // EOF ends the multishot.
  ::shutdown(sv[1], SHUT_WR);
  Completion eof = wait_one();
  EXPECT_EQ(eof.res, 0);
  EXPECT_FALSE(eof.more);
  EXPECT_EQ(eof.buffer_id, -1);
}

TEST_F(UringTest, RecyclingEveryBufferKeepsDataFlowing) {
  SKIP_WITHOUT_URING();
  int sv[2];
  socket_pair(sv);
  ASSERT_TRUE(ring_->recv_multishot(sv[0], token(1, OpCode::kRecv)));
  // More messages than buffers: only works if recycled buffers return to the kernel.
  std::string received;
  std::string sent;
  for (int i = 0; i < 64; ++i) {
    std::string msg = "message-" + std::to_string(i) + ";";
    sent += msg;
    ASSERT_EQ(::write(sv[1], msg.data(), msg.size()), static_cast<ssize_t>(msg.size()));
    while (received.size() < sent.size()) {
      Completion c = wait_one();
      ASSERT_GT(c.res, 0);
      ASSERT_TRUE(c.more);
      received.append(reinterpret_cast<char*>(ring_->buffer(c.buffer_id)), c.res);
      ring_->recycle(static_cast<uint16_t>(c.buffer_id));
    }
  }
  EXPECT_EQ(received, sent);
}

TEST_F(UringTest, EmptyBufferRingEndsMultishotWithEnobufsAndRearmResumes) {
  ring_.reset();
  ring_ = make_ring(
      RingOptions{.sq_entries = 16, .cq_entries = 64, .buffer_count = 2, .buffer_size = 64});
  SKIP_WITHOUT_URING();
  int sv[2];
  socket_pair(sv);
  std::string sent(300, '\0');
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>('a' + i % 26);
  ASSERT_EQ(::write(sv[1], sent.data(), sent.size()), static_cast<ssize_t>(sent.size()));

  std::string received;
  int enobufs = 0;
  for (int round = 0; round < 10 && received.size() < sent.size(); ++round) {
    ASSERT_TRUE(ring_->recv_multishot(sv[0], token(2, OpCode::kRecv)));
    std::vector<uint16_t> held;
    for (;;) {
      Completion c = wait_one();
      if (c.res > 0) {
        ASSERT_GE(c.buffer_id, 0);
        received.append(reinterpret_cast<char*>(ring_->buffer(c.buffer_id)), c.res);
        held.push_back(static_cast<uint16_t>(c.buffer_id));
      }
      if (!c.more) {
        if (received.size() < sent.size()) {
          EXPECT_EQ(c.res, -ENOBUFS);
          EXPECT_EQ(c.buffer_id, -1);
          EXPECT_EQ(ring_->buffers_free(), 0u);
          ++enobufs;
        }
        break;
      }
      if (received.size() == sent.size()) break;
    }
    for (uint16_t bid : held) ring_->recycle(bid);
  }
  EXPECT_EQ(received, sent);
  EXPECT_GE(enobufs, 2);  // 300 bytes through 2 x 64-byte buffers
}

TEST_F(UringTest, SendWritesToThePeer) {
  SKIP_WITHOUT_URING();
  int sv[2];
  socket_pair(sv);
  static const char kMsg[] = "payload over io_uring";
  ASSERT_TRUE(ring_->send(sv[0], kMsg, sizeof(kMsg) - 1, token(4, OpCode::kSend)));
  Completion c = wait_one();
  EXPECT_EQ(c.user_data, token(4, OpCode::kSend));
  EXPECT_EQ(c.res, static_cast<int>(sizeof(kMsg) - 1));
  char buf[64] = {};
  ASSERT_EQ(::recv(sv[1], buf, sizeof(buf), 0), static_cast<ssize_t>(sizeof(kMsg) - 1));
  EXPECT_STREQ(buf, kMsg);
}

TEST_F(UringTest, SendToClosedPeerFailsWithEpipeInsteadOfSignal) {
  SKIP_WITHOUT_URING();
  int sv[2];
  socket_pair(sv);
  ::close(sv[1]);
  fds_.pop_back();
  ASSERT_TRUE(ring_->send(sv[0], "x", 1, token(4, OpCode::kSend)));
  EXPECT_EQ(wait_one().res, -EPIPE);  // a SIGPIPE would have killed the test
}

TEST_F(UringTest, SubmissionQueueOverflowIsFlushedNotFailed) {
  ring_.reset();
  ring_ = make_ring(
      RingOptions{.sq_entries = 4, .cq_entries = 64, .buffer_count = 4, .buffer_size = 64});
  SKIP_WITHOUT_URING();
  int sv[2];
  socket_pair(sv);
  for (uint32_t i = 0; i < 20; ++i) {
    ASSERT_TRUE(ring_->send(sv[0], "abcd", 4, token(i, OpCode::kSend)));
  }
  auto got = wait_for(20);
  for (const Completion& c : got) EXPECT_EQ(c.res, 4);
  char buf[128];
  ssize_t total = 0;
  while (total < 80) {
    ssize_t n = ::recv(sv[1], buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    total += n;
  }
  EXPECT_EQ(total, 80);
}

TEST_F(UringTest, SendPartsWritesTheSpansInOrderAsOneSend) {
  SKIP_WITHOUT_URING();
  int sv[2];
  socket_pair(sv);
  std::string a = "first record|", b(5000, 'b'), c = "|last";
  iovec parts[3] = {{a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
  ASSERT_TRUE(ring_->send_parts(sv[0], parts, token(4, OpCode::kSend)));
  Completion done = wait_one();
  EXPECT_EQ(done.user_data, token(4, OpCode::kSend));
  EXPECT_EQ(done.res, static_cast<int>(a.size() + b.size() + c.size()));
  std::string got;
  char buf[8192];
  while (got.size() < a.size() + b.size() + c.size()) {
    ssize_t n = ::recv(sv[1], buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_EQ(got, a + b + c);
  EXPECT_FALSE(ring_->send_parts(sv[0], {}, token(5, OpCode::kSend)));
}

TEST_F(UringTest, SendPartsSlotsAreNotReusedBeforeTheKernelReadThem) {
  // 4 SQ entries, 40 gathered sends queued without an explicit submit: the iovec slots
  // wrap around ten times, which is only safe because a full SQ is submitted first.
  ring_.reset();
  ring_ = make_ring(
      RingOptions{.sq_entries = 4, .cq_entries = 128, .buffer_count = 4, .buffer_size = 64});
  SKIP_WITHOUT_URING();
  int sv[2];
  socket_pair(sv);
  std::vector<std::string> texts;
  for (int i = 0; i < 40; ++i) texts.push_back("<" + std::to_string(i) + ">");
  std::string expected;
  for (uint32_t i = 0; i < 40; ++i) {
    iovec parts[2] = {{texts[i].data(), 1}, {texts[i].data() + 1, texts[i].size() - 1}};
    ASSERT_TRUE(ring_->send_parts(sv[0], parts, token(i, OpCode::kSend)));
    expected += texts[i];
  }
  auto got = wait_for(40);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].res, static_cast<int>(texts[i].size()));
  std::string received;
  char buf[512];
  while (received.size() < expected.size()) {
    ssize_t n = ::recv(sv[1], buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    received.append(buf, static_cast<size_t>(n));
  }
  EXPECT_EQ(received, expected);
}

TEST_F(UringTest, ConnectCopiesTheAddressAndReportsRefusal) {
  SKIP_WITHOUT_URING();
  sockaddr_in addr;
  listener(&addr);
  int ok_fd = track(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  {
    sockaddr_in scratch = addr;
    ASSERT_TRUE(ring_->connect(ok_fd, reinterpret_cast<sockaddr*>(&scratch), sizeof(scratch),
                               token(5, OpCode::kConnect)));
    std::memset(&scratch, 0xff, sizeof(scratch));  // the ring kept its own copy
  }
  Completion c = wait_one();
  EXPECT_EQ(c.user_data, token(5, OpCode::kConnect));
  EXPECT_EQ(c.res, 0);

  // A port with no listener: bind one, note its port, close it.
  sockaddr_in closed;
  int tmp = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  closed = {};
  closed.sin_family = AF_INET;
  closed.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(tmp, reinterpret_cast<sockaddr*>(&closed), sizeof(closed)), 0);
  socklen_t len = sizeof(closed);
  ASSERT_EQ(::getsockname(tmp, reinterpret_cast<sockaddr*>(&closed), &len), 0);
  ::close(tmp);
  int refused_fd = track(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(ring_->connect(refused_fd, reinterpret_cast<sockaddr*>(&closed), sizeof(closed),
                             token(6, OpCode::kConnect)));
  c = wait_one();
  EXPECT_EQ(c.user_data, token(6, OpCode::kConnect));
  EXPECT_EQ(c.res, -ECONNREFUSED);
}

TEST_F(UringTest, ShutdownRelaysHalfClose) {
  SKIP_WITHOUT_URING();
  int sv[2];
  socket_pair(sv);
  ASSERT_TRUE(ring_->shutdown(sv[0], SHUT_WR, token(8, OpCode::kShutdown)));
  EXPECT_EQ(wait_one().res, 0);
  char b;
  EXPECT_EQ(::recv(sv[1], &b, 1, 0), 0);  // EOF at the peer
  // The other direction still works.
  ASSERT_EQ(::send(sv[1], "y", 1, 0), 1);
  ASSERT_EQ(::recv(sv[0], &b, 1, 0), 1);
  EXPECT_EQ(b, 'y');
}

TEST_F(UringTest, CloseReleasesTheDescriptor) {
  SKIP_WITHOUT_URING();
  int fd = ::eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(ring_->close(fd, token(9, OpCode::kClose)));
  EXPECT_EQ(wait_one().res, 0);
  errno = 0;
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
}

TEST_F(UringTest, CancelFdEndsPendingRecvWithEcanceled) {
  SKIP_WITHOUT_URING();
  int sv[2];
  socket_pair(sv);
  const uint64_t recv_tok = token(10, OpCode::kRecv);
  const uint64_t cancel_tok = token(10, OpCode::kCancel);
  ASSERT_TRUE(ring_->recv_multishot(sv[0], recv_tok));
  ASSERT_EQ(ring_->submit_and_wait(0), 0);
  ASSERT_TRUE(ring_->cancel_fd(sv[0], cancel_tok));
  auto got = wait_for(2);
  bool saw_recv = false, saw_cancel = false;
  for (const Completion& c : got) {
    if (c.user_data == recv_tok) {
      saw_recv = true;
      EXPECT_EQ(c.res, -ECANCELED);
      EXPECT_FALSE(c.more);
    } else if (c.user_data == cancel_tok) {
      saw_cancel = true;
      EXPECT_EQ(c.res, 1);  // CANCEL_ALL reports how many requests it cancelled
    }
  }
  EXPECT_TRUE(saw_recv);
  EXPECT_TRUE(saw_cancel);
  EXPECT_EQ(ring_->buffers_free(), 16u);
}

TEST_F(UringTest, ReadAndCancelByUserData) {
  SKIP_WITHOUT_URING();
  int efd = track(::eventfd(0, EFD_CLOEXEC));
  uint64_t value = 0;
  const uint64_t wake_tok = token(0, OpCode::kWake);
  ASSERT_TRUE(ring_->read(efd, &value, sizeof(value), wake_tok));
  ASSERT_EQ(ring_->submit_and_wait(0), 0);
  uint64_t one = 5;
  ASSERT_EQ(::write(efd, &one, sizeof(one)), 8);
  Completion c = wait_one();
  EXPECT_EQ(c.user_data, wake_tok);
  EXPECT_EQ(c.res, 8);
  EXPECT_EQ(value, 5u);

  ASSERT_TRUE(ring_->read(efd, &value, sizeof(value), wake_tok));
  ASSERT_EQ(ring_->submit_and_wait(0), 0);
  ASSERT_TRUE(ring_->cancel(wake_tok, token(0, OpCode::kCancel)));
  auto got = wait_for(2);
  for (const Completion& done : got) {
    if (done.user_data == wake_tok) {
      EXPECT_EQ(done.res, -ECANCELED);
    } else {
      EXPECT_EQ(done.user_data, token(0, OpCode::kCancel));
      EXPECT_EQ(done.res, 1);
    }
  }
}

// A turn that submits small sends waits past their own completions (one io_uring_enter
// per wake-up, not two). Here the send's socket is full, so it waits for room instead
// of completing while submitted: the data that then arrives on another socket must still
// be delivered promptly, not held until the send or the turn's timeout (30 s) completes.
TEST_F(UringTest, ASendThatWaitsForRoomDoesNotHoldBackOtherEvents) {
  SKIP_WITHOUT_URING();
  int full[2];
  socket_pair(full);
  int small = 4096;
  ASSERT_EQ(::setsockopt(full[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
  std::string filler(4096, 'f');
  while (::send(full[0], filler.data(), filler.size(), MSG_DONTWAIT) > 0) {
  }
  ASSERT_EQ(errno, EAGAIN);
  int other[2];
  socket_pair(other);
  ASSERT_TRUE(ring_->recv_multishot(other[0], token(1, OpCode::kRecv)));
  ASSERT_EQ(ring_->submit_and_wait(0), 0);

  std::string small_send(100, 's');
  ASSERT_TRUE(ring_->send(full[0], small_send.data(), small_send.size(), token(2, OpCode::kSend)));
  std::thread writer([fd = other[1]] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(::send(fd, "ping", 4, 0), 4);
  });
  const auto start = std::chrono::steady_clock::now();
  bool received = false;
  Completion batch[8];
  while (!received && std::chrono::steady_clock::now() - start < std::chrono::seconds(60)) {
    ASSERT_GE(ring_->submit_and_wait(30'000'000'000), 0);
    unsigned n = ring_->reap(batch);
    for (unsigned i = 0; i < n; ++i) {
      if (batch[i].user_data == token(1, OpCode::kRecv) && batch[i].res == 4) received = true;
      if (batch[i].buffer_id >= 0) ring_->recycle(static_cast<uint16_t>(batch[i].buffer_id));
    }
  }
  writer.join();
  EXPECT_TRUE(received);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10))
      << "the recv waited for the stalled send or the turn's timeout";
}

}  // namespace
}  // namespace ringside
