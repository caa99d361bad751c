// Micro-benchmarks of the reactor's data structures: provided-buffer round trips through
// a real io_uring, ChunkQueue append/consume, TimerWheel re-scheduling and Mailbox
// post/drain. Registered as a one-pass test too (bench/micro/meson.build).
#include <benchmark/benchmark.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "benchmark_main.h"
#include "ringside/buffer.h"
#include "ringside/io.h"
#include "ringside/mailbox.h"
#include "ringside/timer_wheel.h"

namespace ringside {
namespace {

// One message through a socketpair: the kernel picks a provided buffer for the armed
// multishot recv, we reap the completion and hand the buffer back.
void BM_ProvidedBufferRoundTrip(benchmark::State& state) {
  const auto bytes = static_cast<size_t>(state.range(0));
  auto made = make_io_uring(RingOptions{.sq_entries = 64, .cq_entries = 256, .buffer_count = 64});
  if (!made.ok()) {
    bench::skip_unavailable(state, "io_uring (" + std::string(made.error().what) + ")");
    return;
  }
  IoRing& ring = **made;
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    state.SkipWithError("socketpair failed");
    return;
  }
  const uint64_t token = Token{1, 0, 0, OpCode::kRecv}.pack();
  ring.recv_multishot(sv[0], token);
  std::vector<char> payload(bytes, 'x');
  Completion batch[16];
  for (auto _ : state) {
    if (::write(sv[1], payload.data(), payload.size()) != static_cast<ssize_t>(bytes)) {
      state.SkipWithError("write failed");
      break;
    }
    size_t received = 0;
    while (received < bytes) {
      ring.submit_and_wait(-1);
      unsigned n = ring.reap(batch);
      for (unsigned i = 0; i < n; ++i) {
        const Completion& c = batch[i];
        if (c.buffer_id >= 0) {
          benchmark::DoNotOptimize(ring.buffer(static_cast<uint16_t>(c.buffer_id))[0]);
          ring.recycle(static_cast<uint16_t>(c.buffer_id));
        }
        if (c.res > 0) received += static_cast<size_t>(c.res);
        if (!c.more) ring.recv_multishot(sv[0], token);  // -ENOBUFS or similar: re-arm
      }
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  ::close(sv[0]);
  ::close(sv[1]);
}
BENCHMARK(BM_ProvidedBufferRoundTrip)->Arg(64)->Arg(16 * 1024);

// Relaying one received buffer: copy into the send queue, then drain it as a send would.
void BM_ChunkQueueAppendConsume(benchmark::State& state) {
  const auto bytes = static_cast<size_t>(state.range(0));
  std::vector<uint8_t> data(bytes, 0x5a);
  ChunkQueue queue;
  for (auto _ : state) {
    queue.append(data.data(), data.size());
    while (!queue.empty()) {
      auto front = queue.front();
      benchmark::DoNotOptimize(front.data());
      queue.consume(front.size());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_ChunkQueueAppendConsume)->Arg(100)->Arg(16 * 1024)->Arg(256 * 1024);

// Writing in place (as the TLS layer encrypts into the queue) and partial sends.
void BM_ChunkQueueReserveCommitPartialConsume(benchmark::State& state) {
  ChunkQueue queue;
  for (auto _ : state) {
    for (int i = 0; i < 4; ++i) {
      auto space = queue.reserve();
      size_t n = space.size() < 4096 ? space.size() : 4096;
      std::memset(space.data(), i, n);
      queue.commit(n);
    }
    while (queue.size() > 1000) queue.consume(1000);  // short sends
    queue.consume(queue.size());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * 4 * 4096));
}
BENCHMARK(BM_ChunkQueueReserveCommitPartialConsume);

// Every read on a connection pushes its idle deadline out.
void BM_TimerWheelReschedule(benchmark::State& state) {
  const auto timers = static_cast<size_t>(state.range(0));
  uint64_t now = 1'000'000;
  std::vector<TimerNode> nodes(timers);
  TimerWheel wheel(now);
  for (size_t i = 0; i < timers; ++i) wheel.schedule(&nodes[i], now + 60'000 + i);
  size_t i = 0;
  for (auto _ : state) {
    wheel.schedule(&nodes[i], now + 60'000 + (i & 1023));
    if (++i == timers) {
      i = 0;
      wheel.advance(++now, [](TimerNode*) {});
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_TimerWheelReschedule)->Arg(1024)->Arg(65536);

// Post and drain on one thread: the queue and eventfd cost without cross-core traffic.
void BM_MailboxPostDrain(benchmark::State& state) {
  auto made = Mailbox::make(1024);
  if (!made.ok()) {
    state.SkipWithError("eventfd failed");
    return;
  }
  Mailbox& mailbox = **made;
  int64_t runs = 0;
  for (auto _ : state) {
    mailbox.post([&runs] { ++runs; });
    mailbox.drain([](Mailbox::Message&& m) { m(); });
  }
  uint64_t counter;
  benchmark::DoNotOptimize(::read(mailbox.event_fd(), &counter, sizeof(counter)));
  state.SetItemsProcessed(runs);
}
BENCHMARK(BM_MailboxPostDrain);

}  // namespace
}  // namespace ringside
