#include "ringside/mailbox.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "ringside/io.h"

namespace ringside {
namespace {

std::unique_ptr<Mailbox> make_mailbox(size_t capacity) {
  auto mailbox = Mailbox::make(capacity);
  EXPECT_TRUE(mailbox.ok());
  return std::move(mailbox).value();
}

uint64_t read_counter(int fd) {
  uint64_t value = 0;
  EXPECT_EQ(::read(fd, &value, sizeof(value)), 8);
  return value;
}

bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

TEST(UniqueFunctionTest, HoldsMoveOnlyCallables) {
  UniqueFunction empty;
  EXPECT_FALSE(empty);
  auto owned = std::make_unique<int>(41);
  int seen = 0;
  UniqueFunction f = [p = std::move(owned), &seen] { seen = ++*p; };
  ASSERT_TRUE(f);
  UniqueFunction g = std::move(f);
  EXPECT_FALSE(f);  // NOLINT(bugprone-use-after-move): moved-from is empty
  g();
  EXPECT_EQ(seen, 42);
}

TEST(MailboxTest, DeliversInOrderAndSignalsTheEventfd) {
  auto mailbox = make_mailbox(8);
  EXPECT_FALSE(readable(mailbox->event_fd(), 0));
  std::vector<int> got;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(mailbox->post([&got, i] { got.push_back(i); }));
  ASSERT_TRUE(readable(mailbox->event_fd(), 0));
  EXPECT_EQ(read_counter(mailbox->event_fd()), 3u);  // one per post
  EXPECT_EQ(mailbox->drain([](Mailbox::Message&& m) { m(); }), 3u);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(mailbox->drain([](Mailbox::Message&&) { ADD_FAILURE(); }), 0u);
}

TEST(MailboxTest, DrainHonoursTheLimit) {
  auto mailbox = make_mailbox(8);
  int runs = 0;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(mailbox->post([&runs] { ++runs; }));
  EXPECT_EQ(mailbox->drain([](Mailbox::Message&& m) { m(); }, 2), 2u);
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(mailbox->drain([](Mailbox::Message&& m) { m(); }), 3u);
  EXPECT_EQ(runs, 5);
}

TEST(MailboxTest, FullMailboxRefusesAndKeepsTheMessage) {
  auto mailbox = make_mailbox(4);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(mailbox->post([] {}));
  bool ran = false;
  Mailbox::Message extra = [&ran] { ran = true; };
  EXPECT_FALSE(mailbox->post(std::move(extra)));
  ASSERT_TRUE(extra);  // still ours to retry
  EXPECT_EQ(mailbox->drain([](Mailbox::Message&&) {}), 4u);
  EXPECT_TRUE(mailbox->post(std::move(extra)));
  mailbox->drain([](Mailbox::Message&& m) { m(); });
  EXPECT_TRUE(ran);
}

TEST(MailboxTest, WrapsAroundManyTimes) {
  auto mailbox = make_mailbox(4);
  int next_expected = 0;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(mailbox->post([&next_expected, i] { EXPECT_EQ(next_expected++, i); }));
    if (i % 3 == 2) mailbox->drain([](Mailbox::Message&& m) { m(); });
  }
  mailbox->drain([](Mailbox::Message&& m) { m(); });
  EXPECT_EQ(next_expected, 1000);
}

TEST(MailboxTest, UndeliveredMessagesAreDestroyed) {
  auto token = std::make_shared<int>(0);
  {
    auto mailbox = make_mailbox(8);
    ASSERT_TRUE(mailbox->post([token] {}));
    ASSERT_TRUE(mailbox->post([token] {}));
    EXPECT_EQ(token.use_count(), 3);
  }
  EXPECT_EQ(token.use_count(), 1);
}

TEST(MailboxTest, AMessageMayPostAnother) {
  auto mailbox = make_mailbox(8);
  int runs = 0;
  ASSERT_TRUE(mailbox->post([&] {
    ++runs;
    EXPECT_TRUE(mailbox->post([&runs] { ++runs; }));
  }));
  mailbox->drain([](Mailbox::Message&& m) { m(); });
  EXPECT_EQ(runs, 2);  // the second message was drained in the same call
}

// Payload written by a producer with plain stores and read by the consumer: under TSan
// this checks that post/drain order the two threads (no data race is reported).
struct Payload {
  int producer = 0;
  int sequence = 0;
  std::vector<int> filler;
};

void run_producers_and_consumer(int producers, int per_producer, size_t capacity) {
  auto mailbox = make_mailbox(capacity);
  std::vector<int> next(producers, 0);
  int received = 0;
  const int total = producers * per_producer;
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < per_producer; ++i) {
        auto payload = std::make_unique<Payload>();
        payload->producer = p;
        payload->sequence = i;
        payload->filler.assign(4, i);
        Mailbox::Message m = [&next, &received, payload = std::move(payload)] {
          EXPECT_EQ(payload->sequence, next[payload->producer]);
          EXPECT_EQ(payload->filler[3], payload->sequence);
          next[payload->producer] = payload->sequence + 1;
          ++received;
        };
        while (!mailbox->post(std::move(m))) std::this_thread::yield();
      }
    });
  }
  // The consumer sleeps on the eventfd like a worker would on its armed read.
  while (received < total) {
    if (!readable(mailbox->event_fd(), 10000)) break;
    read_counter(mailbox->event_fd());
    mailbox->drain([](Mailbox::Message&& m) { m(); });
  }
  for (auto& t : threads) t.join();
  mailbox->drain([](Mailbox::Message&& m) { m(); });
  EXPECT_EQ(received, total);
  for (int p = 0; p < producers; ++p) EXPECT_EQ(next[p], per_producer);
}

TEST(MailboxTest, OneProducerThreadToConsumerThread) { run_producers_and_consumer(1, 20000, 64); }

TEST(MailboxTest, SeveralProducersKeepTheirOwnOrder) { run_producers_and_consumer(3, 10000, 16); }

TEST(MailboxTest, WakesAnIoUringReadOnTheEventfd) {
  auto ring = make_io_uring(
      RingOptions{.sq_entries = 8, .cq_entries = 16, .buffer_count = 2, .buffer_size = 64});
  if (!ring.ok()) GTEST_SKIP() << "io_uring unavailable: " << ring.error().what;
  auto mailbox = make_mailbox(8);
  uint64_t value = 0;
  const uint64_t wake = Token{0, 0, 0, OpCode::kWake}.pack();
  ASSERT_TRUE((*ring)->read(mailbox->event_fd(), &value, sizeof(value), wake));
  ASSERT_EQ((*ring)->submit_and_wait(0), 0);
  std::atomic<bool> ran{false};
  std::thread producer([&] { EXPECT_TRUE(mailbox->post([&ran] { ran = true; })); });
  Completion c{};
  unsigned got = 0;
  for (int i = 0; i < 100 && got == 0; ++i) {
    ASSERT_GE((*ring)->submit_and_wait(100'000'000), 0);
    got = (*ring)->reap(std::span<Completion>(&c, 1));
  }
  producer.join();
  ASSERT_EQ(got, 1u);
  EXPECT_EQ(c.user_data, wake);
  EXPECT_EQ(c.res, 8);
  EXPECT_EQ(value, 1u);
  EXPECT_EQ(mailbox->drain([](Mailbox::Message&& m) { m(); }), 1u);
  EXPECT_TRUE(ran);
}

}  // namespace
}  // namespace ringside
