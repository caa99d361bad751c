// The part of a FakeRing-driven worker test that every such test repeats: a worker on a
// FakeRing with one adopted listener, one loop turn at a time, the armed recv of a
// descriptor, and a stop that completes whatever the stop cancelled. The worker's real
// sockets are closed when it closes them through the ring, and a test that leaves one
// open fails.
#pragma once

#include <dirent.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <string>

#include "fake_ring.h"
#include "proxy/worker.h"

namespace ringside::proxy {

class FakeWorkerTest : public ::testing::Test {
 protected:
  using Call = FakeRing::Call;

  static constexpr int kListenFd = 900001;  // fake descriptors: never real, never closed
  static constexpr int kClientFd = 900002;

  // Starts worker 0 of runtime_ on a FakeRing with buffer_count 4 KiB receive buffers.
  // A worker started before must have been stopped (stop_worker()) before runtime_ was
  // replaced: it refers to it until it is destroyed.
  void start_worker(unsigned buffer_count) {
    if (descriptors_before_ < 0) descriptors_before_ = open_descriptors();
    FakeRing::Options options;
    options.buffer_count = buffer_count;
    options.buffer_size = 4096;
    options.close_descriptors = true;
    auto ring = std::make_unique<FakeRing>(options);
    ring_ = ring.get();
    worker_ = std::make_unique<Worker>(0, *runtime_, std::move(ring));
    worker_->adopt_listener(0, kListenFd);
    ASSERT_TRUE(worker_->start());
  }

  // Stops and destroys the worker, completing what the stop cancelled as the kernel would.
  void stop_worker() {
    if (!worker_) return;
    worker_->request_stop();
    for (int i = 0; i < 20 && worker_->turn(0); ++i) {
      // The kernel ends what the stop cancelled, so connections can be released.
      for (const auto& op : ring_->ops()) {
        if (ring_->armed(op.user_data) && op.call != Call::kAcceptMultishot &&
            op.call != Call::kRead) {
          ring_->complete(op.user_data, -ECANCELED);
        }
      }
    }
    worker_.reset();
    ring_ = nullptr;
  }

  void TearDown() override {
    stop_worker();
    // Every socket the worker made (upstream sockets are real) was closed again.
    if (descriptors_before_ >= 0) {
      EXPECT_EQ(open_descriptors(), descriptors_before_);
    }
  }

  // How many descriptors this process has open.
  static int open_descriptors() {
    DIR* dir = opendir("/proc/self/fd");
    if (dir == nullptr) return -1;
    int count = 0;
    while (readdir(dir) != nullptr) ++count;
    closedir(dir);
    return count;  // the same constant extra (".", "..", the DIR's own) every time
  }

  void turn() { ASSERT_TRUE(worker_->turn(0)); }

  // The user_data of the multishot recv armed on fd, or 0.
  uint64_t recv_token(int fd) {
    for (const auto& op : ring_->ops()) {
      if (op.call == Call::kRecvMultishot && op.fd == fd && ring_->armed(op.user_data)) {
        return op.user_data;
      }
    }
    return 0;
  }

  // Completes the send in flight on fd, and the ones that follow it, and returns what
  // they carried. (Tokens repeat per socket, so only the newest send record is live.)
  std::string drain_sends(int fd) {
    std::string out;
    for (int round = 0; round < 20; ++round) {
      const FakeRing::Op* newest = nullptr;
      for (const auto& op : ring_->ops()) {
        if (op.call == Call::kSend && op.fd == fd) newest = &op;
      }
      if (newest == nullptr || !ring_->armed(newest->user_data)) break;
      FakeRing::Op op = *newest;
      out += op.data;
      ring_->complete(op.user_data, static_cast<int32_t>(op.len));
      turn();
    }
    return out;
  }

  std::unique_ptr<Runtime> runtime_;
  FakeRing* ring_ = nullptr;
  std::unique_ptr<Worker> worker_;
  int descriptors_before_ = -1;
};

}  // namespace ringside::proxy
