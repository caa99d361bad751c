#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "ringside/buffer.h"

namespace ringside {
namespace {

std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>(i * 7 + i / 251);
  return bytes;
}

// Reads everything out of the queue through front()/consume().
std::vector<uint8_t> drain(ChunkQueue& q) {
  std::vector<uint8_t> out;
  while (!q.empty()) {
    auto f = q.front();
    EXPECT_FALSE(f.empty());
    out.insert(out.end(), f.begin(), f.end());
    q.consume(f.size());
  }
  return out;
}

class ChunkQueueTest : public ::testing::Test {
 protected:
  void SetUp() override { ChunkQueue::trim_pool(); }
  void TearDown() override { ChunkQueue::trim_pool(); }
};

TEST_F(ChunkQueueTest, EmptyQueueHoldsNothing) {
  ChunkQueue q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size(), 0u);
  EXPECT_TRUE(q.front().empty());
  q.consume(0);
  EXPECT_EQ(ChunkQueue::pooled_chunks(), 0u);
}

TEST_F(ChunkQueueTest, AppendAcrossChunksPreservesOrder) {
  auto bytes = pattern(ChunkQueue::kChunkSize * 3 + 123);
  ChunkQueue q;
  q.append(bytes.data(), 100);
  q.append(bytes.data() + 100, bytes.size() - 100);
  EXPECT_EQ(q.size(), bytes.size());
  // The head span never exceeds one chunk.
  EXPECT_EQ(q.front().size(), ChunkQueue::kChunkSize);
  EXPECT_EQ(drain(q), bytes);
  EXPECT_TRUE(q.empty());
  // All four chunks went back to this thread's pool.
  EXPECT_EQ(ChunkQueue::pooled_chunks(), 4u);
}

TEST_F(ChunkQueueTest, PartialConsumeKeepsRemainder) {
  auto bytes = pattern(1000);
  ChunkQueue q;
  q.append(bytes.data(), bytes.size());
  q.consume(10);
  ASSERT_EQ(q.size(), 990u);
  EXPECT_EQ(q.front()[0], bytes[10]);
  // Consume spanning a chunk boundary.
  auto big = pattern(ChunkQueue::kChunkSize);
  q.append(big.data(), big.size());
  q.consume(990 + 5);
  EXPECT_EQ(q.size(), big.size() - 5);
  EXPECT_EQ(q.front()[0], big[5]);
  std::vector<uint8_t> rest = drain(q);
  EXPECT_TRUE(std::equal(rest.begin(), rest.end(), big.begin() + 5));
}

TEST_F(ChunkQueueTest, GatherSpansTheQueueChunkByChunkWithinLimits) {
  ChunkQueue q;
  iovec parts[8];
  EXPECT_EQ(q.gather(parts, 1 << 20), 0u);

  auto bytes = pattern(3 * ChunkQueue::kChunkSize + 100);
  q.append(bytes.data(), bytes.size());
  q.consume(10);  // the head chunk is partly read
  auto joined = [&](size_t n) {
    std::vector<uint8_t> out;
    for (size_t i = 0; i < n; ++i) {
      auto* p = static_cast<const uint8_t*>(parts[i].iov_base);
      out.insert(out.end(), p, p + parts[i].iov_len);
    }
    return out;
  };
  size_t n = q.gather(parts, 1 << 20);
  ASSERT_EQ(n, 4u);
  EXPECT_EQ(parts[0].iov_len, ChunkQueue::kChunkSize - 10);
  EXPECT_EQ(joined(n), std::vector<uint8_t>(bytes.begin() + 10, bytes.end()));

  // At most out.size() spans, and at most max_bytes bytes: the last span is cut short.
  EXPECT_EQ(q.gather(std::span<iovec>(parts, 2), 1 << 20), 2u);
  n = q.gather(parts, ChunkQueue::kChunkSize + 5);
  ASSERT_EQ(n, 2u);
  EXPECT_EQ(parts[1].iov_len, 15u);
  EXPECT_EQ(joined(n), std::vector<uint8_t>(bytes.begin() + 10,
                                            bytes.begin() + 10 + ChunkQueue::kChunkSize + 5));
  // Gathering reads only: the queue still holds everything.
  EXPECT_EQ(q.size(), bytes.size() - 10);
  EXPECT_EQ(drain(q), std::vector<uint8_t>(bytes.begin() + 10, bytes.end()));
}

TEST_F(ChunkQueueTest, ReserveCommitWritesInPlace) {
  ChunkQueue q;
  auto space = q.reserve();
  ASSERT_GE(space.size(), 1u);
  ASSERT_LE(space.size(), ChunkQueue::kChunkSize);
  std::memcpy(space.data(), "hello", 5);
  q.commit(5);
  EXPECT_EQ(q.size(), 5u);
  space = q.reserve();
  EXPECT_EQ(space.size(), ChunkQueue::kChunkSize - 5);
  std::memcpy(space.data(), " world", 6);
  q.commit(6);
  auto f = q.front();
  EXPECT_EQ(std::string(f.begin(), f.end()), "hello world");
}

TEST_F(ChunkQueueTest, ReserveOfFullTailStartsNewChunk) {
  auto bytes = pattern(ChunkQueue::kChunkSize);
  ChunkQueue q;
  q.append(bytes.data(), bytes.size());
  auto space = q.reserve();
  EXPECT_EQ(space.size(), ChunkQueue::kChunkSize);
  space[0] = 0xAB;
  q.commit(1);
  EXPECT_EQ(q.size(), ChunkQueue::kChunkSize + 1);
  q.consume(ChunkQueue::kChunkSize);
  ASSERT_EQ(q.front().size(), 1u);
  EXPECT_EQ(q.front()[0], 0xAB);
}

TEST_F(ChunkQueueTest, ReserveWithoutCommitLeavesEmptyQueueWithoutMemory) {
  ChunkQueue q;
  (void)q.reserve();
  q.commit(0);
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(q.front().empty());
  EXPECT_EQ(ChunkQueue::pooled_chunks(), 1u);  // the chunk went back to the pool
}

TEST_F(ChunkQueueTest, ChunksAreReusedFromPool) {
  ChunkQueue q;
  q.append("abc", 3);
  const uint8_t* first = q.front().data();
  q.consume(3);
  EXPECT_EQ(ChunkQueue::pooled_chunks(), 1u);
  q.append("xyz", 3);
  EXPECT_EQ(ChunkQueue::pooled_chunks(), 0u);
  EXPECT_EQ(q.front().data(), first);
}

TEST_F(ChunkQueueTest, PoolIsCapped) {
  std::vector<ChunkQueue> queues(300);
  for (auto& q : queues) q.append("x", 1);
  queues.clear();
  EXPECT_EQ(ChunkQueue::pooled_chunks(), 256u);
  ChunkQueue::trim_pool();
  EXPECT_EQ(ChunkQueue::pooled_chunks(), 0u);
}

TEST_F(ChunkQueueTest, MoveTransfersContents) {
  ChunkQueue a;
  a.append("payload", 7);
  ChunkQueue b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(b.size(), 7u);
  ChunkQueue c;
  c.append("old", 3);
  c = std::move(b);
  auto f = c.front();
  EXPECT_EQ(std::string(f.begin(), f.end()), "payload");
  // c's old chunk was released on assignment.
  EXPECT_EQ(ChunkQueue::pooled_chunks(), 1u);
}

TEST_F(ChunkQueueTest, ClearReleasesEverything) {
  auto bytes = pattern(ChunkQueue::kChunkSize * 2);
  ChunkQueue q;
  q.append(bytes.data(), bytes.size());
  q.clear();
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(q.front().empty());
  EXPECT_EQ(ChunkQueue::pooled_chunks(), 2u);
}

TEST_F(ChunkQueueTest, PoolIsPerThread) {
  ChunkQueue q;
  q.append("a", 1);
  q.consume(1);
  EXPECT_EQ(ChunkQueue::pooled_chunks(), 1u);
  size_t other_thread_pool = 99;
  std::thread([&] { other_thread_pool = ChunkQueue::pooled_chunks(); }).join();
  EXPECT_EQ(other_thread_pool, 0u);
}

}  // namespace
}  // namespace ringside
