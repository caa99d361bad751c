#include "fake_ring.h"

#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace ringside {
namespace {

using Call = FakeRing::Call;

uint64_t tok(uint32_t slot, OpCode op) { return Token{slot, 2, 1, op}.pack(); }

std::vector<Completion> reap_all(FakeRing& ring) {
  std::vector<Completion> out(ring.ready() + 1);
  out.resize(ring.reap(out));
  return out;
}

TEST(FakeRingTest, RecordsPreparedOperations) {
  FakeRing ring;
  const char payload[] = "hello";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(8080);
  uint64_t wake = 0;
  ASSERT_TRUE(ring.accept_multishot(3, tok(0, OpCode::kAccept)));
  ASSERT_TRUE(ring.recv_multishot(4, tok(1, OpCode::kRecv)));
  ASSERT_TRUE(ring.send(4, payload, 5, tok(1, OpCode::kSend)));
  ASSERT_TRUE(
      ring.connect(5, reinterpret_cast<sockaddr*>(&addr), sizeof(addr), tok(2, OpCode::kConnect)));
  addr.sin_port = 0;  // the ring kept a copy
  ASSERT_TRUE(ring.shutdown(4, SHUT_WR, tok(1, OpCode::kShutdown)));
  ASSERT_TRUE(ring.cancel_fd(5, tok(2, OpCode::kCancel)));
  ASSERT_TRUE(ring.cancel(tok(1, OpCode::kRecv), tok(1, OpCode::kCancel)));
  ASSERT_TRUE(ring.read(9, &wake, sizeof(wake), tok(0, OpCode::kWake)));
  ASSERT_TRUE(ring.close(4, tok(1, OpCode::kClose)));

  ASSERT_EQ(ring.ops().size(), 9u);
  EXPECT_EQ(ring.ops()[0].call, Call::kAcceptMultishot);
  EXPECT_EQ(ring.ops()[0].fd, 3);
  EXPECT_EQ(ring.ops()[1].user_data, tok(1, OpCode::kRecv));
  auto send = ring.last(Call::kSend);
  ASSERT_TRUE(send.has_value());
  EXPECT_EQ(send->data, "hello");
  EXPECT_EQ(send->data_ptr, payload);
  EXPECT_EQ(send->len, 5u);
  auto connect = ring.last(Call::kConnect);
  ASSERT_TRUE(connect.has_value());
  EXPECT_EQ(connect->addr_len, sizeof(sockaddr_in));
  EXPECT_EQ(reinterpret_cast<const sockaddr_in*>(&connect->addr)->sin_port, htons(8080));
  EXPECT_EQ(ring.last(Call::kShutdown)->how, SHUT_WR);
  EXPECT_EQ(ring.last(Call::kCancel)->target, tok(1, OpCode::kRecv));
  EXPECT_EQ(ring.last(Call::kRead)->data_ptr, &wake);
  EXPECT_EQ(ring.count(Call::kClose), 1u);
  EXPECT_EQ(ring.armed_count(), 9u);
  EXPECT_EQ(ring.armed_on(4).size(), 4u);
  // Nothing completes by itself.
  EXPECT_EQ(ring.submit_and_wait(-1), 0);
  EXPECT_EQ(ring.submit_calls(), 1u);
  EXPECT_EQ(ring.last_timeout_ns(), -1);
  ring.clear_ops();
  EXPECT_TRUE(ring.ops().empty());
  EXPECT_EQ(ring.armed_count(), 9u);
}

TEST(FakeRingTest, DeliversBytesInProvidedBuffersAndTracksRecycling) {
  FakeRing ring(FakeRing::Options{.buffer_count = 2, .buffer_size = 8});
  const uint64_t recv = tok(1, OpCode::kRecv);
  ASSERT_TRUE(ring.recv_multishot(4, recv));
  EXPECT_EQ(ring.buffers_free(), 2u);
  int bid = ring.deliver(recv, "short");
  ASSERT_GE(bid, 0);
  EXPECT_EQ(ring.buffers_free(), 1u);
  EXPECT_EQ(ring.submit_and_wait(0), 1);
  auto got = reap_all(ring);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].user_data, recv);
  EXPECT_EQ(got[0].res, 5);
  EXPECT_TRUE(got[0].more);
  EXPECT_EQ(got[0].buffer_id, bid);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(ring.buffer(static_cast<uint16_t>(bid))), 5),
            "short");
  EXPECT_TRUE(ring.armed(recv));  // more=true keeps a multishot armed
  ring.recycle(static_cast<uint16_t>(bid));
  EXPECT_EQ(ring.buffers_free(), 2u);
  ring.recycle(static_cast<uint16_t>(bid));  // double recycle is caught
  EXPECT_EQ(ring.bad_recycles(), 1u);
  EXPECT_EQ(ring.buffers_free(), 2u);
}

TEST(FakeRingTest, LargeDeliverySplitsPerBufferThenRunsOutWithEnobufs) {
  FakeRing ring(FakeRing::Options{.buffer_count = 2, .buffer_size = 4});
  const uint64_t recv = tok(1, OpCode::kRecv);
  ASSERT_TRUE(ring.recv_multishot(4, recv));
  EXPECT_EQ(ring.deliver(recv, "abcdefghij"), -1);  // 10 bytes, 2 x 4-byte buffers
  auto got = reap_all(ring);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].res, 4);
  EXPECT_TRUE(got[0].more);
  EXPECT_EQ(got[1].res, 4);
  EXPECT_EQ(got[2].res, -ENOBUFS);
  EXPECT_FALSE(got[2].more);
  EXPECT_EQ(got[2].buffer_id, -1);
  EXPECT_FALSE(ring.armed(recv));  // -ENOBUFS ended the multishot
  EXPECT_EQ(std::string(reinterpret_cast<char*>(ring.buffer(got[1].buffer_id)), 4), "efgh");
  EXPECT_EQ(ring.buffers_out(), 2u);
}

TEST(FakeRingTest, ErrorsAndEofDisarm) {
  FakeRing ring;
  const uint64_t recv = tok(1, OpCode::kRecv);
  const uint64_t conn = tok(2, OpCode::kConnect);
  sockaddr_in addr{};
  ASSERT_TRUE(ring.recv_multishot(4, recv));
  ASSERT_TRUE(ring.connect(5, reinterpret_cast<sockaddr*>(&addr), sizeof(addr), conn));
  ring.complete(recv, -ECONNRESET);
  ring.complete(conn, -ECONNREFUSED);
  EXPECT_FALSE(ring.armed(recv));
  EXPECT_FALSE(ring.armed(conn));
  auto got = reap_all(ring);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].res, -ECONNRESET);
  EXPECT_EQ(got[1].res, -ECONNREFUSED);
  // Completions for tokens that are not armed (e.g. a stale generation) can be injected.
  ring.complete(tok(1, OpCode::kRecv), 0);
  EXPECT_EQ(ring.ready(), 1u);
}

TEST(FakeRingTest, FailArmedEndsEveryOperationOnTheDescriptor) {
  FakeRing ring;
  ASSERT_TRUE(ring.recv_multishot(4, tok(1, OpCode::kRecv)));
  ASSERT_TRUE(ring.send(4, "x", 1, tok(1, OpCode::kSend)));
  ASSERT_TRUE(ring.recv_multishot(6, tok(3, OpCode::kRecv)));
  ring.fail_armed(4, -ECANCELED);
  auto got = reap_all(ring);
  ASSERT_EQ(got.size(), 2u);
  for (const Completion& c : got) EXPECT_EQ(c.res, -ECANCELED);
  EXPECT_TRUE(ring.armed(tok(3, OpCode::kRecv)));
  EXPECT_EQ(ring.armed_count(), 1u);
}

TEST(FakeRingTest, ReadCompletionFillsTheCallersBuffer) {
  FakeRing ring;
  uint64_t value = 0;
  const uint64_t wake = tok(0, OpCode::kWake);
  ASSERT_TRUE(ring.read(9, &value, sizeof(value), wake));
  uint64_t one = 1;
  EXPECT_EQ(
      ring.complete(wake, 8, false, std::string_view(reinterpret_cast<char*>(&one), sizeof(one))),
      -1);
  EXPECT_EQ(value, 1u);
  EXPECT_EQ(ring.buffers_out(), 0u);
}

TEST(FakeRingTest, AutoCompleteFinishesSimpleOperationsAtSubmit) {
  FakeRing ring(FakeRing::Options{.auto_complete = true});
  const uint64_t recv = tok(1, OpCode::kRecv);
  ASSERT_TRUE(ring.recv_multishot(4, recv));
  ASSERT_TRUE(ring.send(4, "abc", 3, tok(1, OpCode::kSend)));
  ASSERT_TRUE(ring.shutdown(4, SHUT_WR, tok(1, OpCode::kShutdown)));
  ASSERT_TRUE(ring.cancel_fd(4, tok(1, OpCode::kCancel)));
  ASSERT_TRUE(ring.cancel(tok(7, OpCode::kRecv), tok(7, OpCode::kCancel)));  // no match
  ASSERT_TRUE(ring.close(4, tok(1, OpCode::kClose)));
  EXPECT_EQ(ring.ready(), 0u);  // nothing before submit
  EXPECT_EQ(ring.submit_and_wait(0), 6);
  auto got = reap_all(ring);
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got[0].user_data, tok(1, OpCode::kSend));
  EXPECT_EQ(got[0].res, 3);
  EXPECT_EQ(got[1].user_data, tok(1, OpCode::kShutdown));
  EXPECT_EQ(got[1].res, 0);
  EXPECT_EQ(got[2].user_data, recv);  // cancelled by cancel_fd
  EXPECT_EQ(got[2].res, -ECANCELED);
  EXPECT_EQ(got[3].user_data, tok(1, OpCode::kCancel));
  EXPECT_EQ(got[3].res, 1);
  EXPECT_EQ(got[4].res, -ENOENT);
  EXPECT_EQ(got[5].user_data, tok(1, OpCode::kClose));
  EXPECT_EQ(ring.armed_count(), 0u);
}

TEST(FakeRingTest, FailureInjection) {
  FakeRing ring;
  ring.fail_next_submit(-EBADF);
  EXPECT_EQ(ring.submit_and_wait(0), -EBADF);
  EXPECT_EQ(ring.submit_and_wait(0), 0);
  ring.set_broken(true);
  EXPECT_FALSE(ring.recv_multishot(4, 1));
  EXPECT_TRUE(ring.ops().empty());
  ring.set_broken(false);
  EXPECT_TRUE(ring.recv_multishot(4, 1));
}

}  // namespace
}  // namespace ringside
