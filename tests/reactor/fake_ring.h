// FakeRing: an IoRing without a kernel, for unit tests of everything above the reactor.
// It records every prepared operation so a test can inspect what the code under test
// asked for, and lets the test inject completions in any order: short reads, resets,
// cancellations, -ENOBUFS, stale generations. Received bytes are delivered through fake
// provided buffers that must be recycled exactly like the real ones.
//
// Use from another test folder: dependencies: [fake_ring_dep, gtest_dep], and
// #include "fake_ring.h".
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringside/io.h"

namespace ringside {

class FakeRing final : public IoRing {
 public:
  // Which IoRing method prepared an operation.
  enum class Call : uint8_t {
    kAcceptMultishot,
    kRecvMultishot,
    kSend,
    kConnect,
    kShutdown,
    kClose,
    kCancelFd,
    kCancel,
    kRead,
  };

  // One prepared operation, as the code under test asked for it.
  struct Op {
    Call call;
    int fd = -1;
    uint64_t user_data = 0;
    std::string data;                // kSend: a copy of the bytes to send
    const void* data_ptr = nullptr;  // kSend: the caller's pointer; kRead: the target buffer
    uint32_t len = 0;                // kSend, kRead: the requested length
    size_t parts = 1;                // kSend: how many spans it gathered
    SendHint hint = SendHint::kLikelyInline;  // kSend: what the caller expects of it
    sockaddr_storage addr{};                  // kConnect: a copy of the address
    socklen_t addr_len = 0;                   // kConnect
    int how = 0;                              // kShutdown
    uint64_t target = 0;                      // kCancel: the user_data to cancel
  };

  struct Options {
    unsigned buffer_count = 16;
    uint32_t buffer_size = 4096;
    // When set, operations that always succeed on a healthy socket complete by
    // themselves at the next submit_and_wait(): send (res = len), shutdown and close
    // (res = 0), cancel/cancel_fd (every matching armed operation ends with -ECANCELED,
    // the cancel itself with the count). Accept, recv, connect and read stay manual.
    bool auto_complete = false;
    // When set, close() also closes the descriptor, as the kernel would when it runs the
    // close: for code under test that opens real sockets (a worker's upstream sockets
    // come from net::make_client_socket). Off by default, so that tests may name
    // made-up descriptors; a descriptor that is not open is ignored.
    bool close_descriptors = false;
  };

  FakeRing() : FakeRing(Options{}) {}
  explicit FakeRing(const Options& options);

  // --- IoRing ---
  bool accept_multishot(int listen_fd, uint64_t token) override;
  bool recv_multishot(int fd, uint64_t token) override;
  bool send(int fd, const void* data, uint32_t len, uint64_t token) override;
  // Recorded as one kSend whose data is the parts' bytes in order; data_ptr is the first
  // part's pointer and parts how many there were.
  bool send_parts(int fd, std::span<const iovec> parts, uint64_t token, SendHint hint) override;
  bool connect(int fd, const sockaddr* addr, socklen_t addr_len, uint64_t token) override;
  bool shutdown(int fd, int how, uint64_t token) override;
  bool close(int fd, uint64_t token) override;
  bool cancel_fd(int fd, uint64_t token) override;
  bool cancel(uint64_t target, uint64_t token) override;
  bool read(int fd, void* buf, uint32_t len, uint64_t token) override;
  void send_awaited() override { ++send_awaited_calls_; }
  int submit_and_wait(int64_t timeout_ns) override;
  unsigned reap(std::span<Completion> out) override;
  uint8_t* buffer(uint16_t bid) override;
  void recycle(uint16_t bid) override;
  uint32_t buffer_size() const override { return buffer_size_; }
  uint32_t buffers_free() const override { return static_cast<uint32_t>(free_bids_.size()); }
  std::string describe() const override;

  // --- Inspecting what was prepared ---
  // Every operation prepared since construction or the last clear_ops(), in order.
  const std::vector<Op>& ops() const { return ops_; }
  void clear_ops() { ops_.clear(); }
  size_t count(Call call) const;
  // The most recent operation of that kind, if any.
  std::optional<Op> last(Call call) const;
  // Whether an operation with this user_data is still armed (prepared and not finished:
  // no completion yet, or only completions with more=true).
  bool armed(uint64_t user_data) const;
  // user_data of every armed operation on fd.
  std::vector<uint64_t> armed_on(int fd) const;
  size_t armed_count() const { return armed_.size(); }

  // --- Injecting completions (seen by the next submit_and_wait()/reap()) ---
  // A completion with res and more. If it matches an armed operation, a more=false
  // completion disarms it. With bytes:
  //   - on an armed kRead the bytes are copied into the read's buffer;
  //   - otherwise they are copied into a free provided buffer whose id the completion
  //     carries (at most buffer_size() of them; a short read is just fewer bytes). If
  //     no buffer is free, the kernel's behaviour is injected instead: res = -ENOBUFS,
  //     more = false.
  // Returns the buffer id used, or -1.
  int complete(uint64_t user_data, int32_t res, bool more = false, std::string_view bytes = {});
  // Received data on a multishot recv: one completion per buffer_size() bytes, as the
  // kernel does, each with res = its length; the last carries `more`. Stops at the first
  // -ENOBUFS. Returns the last buffer id used, or -1 if the buffers ran out.
  int deliver(uint64_t user_data, std::string_view bytes, bool more = true);
  // Ends every armed operation on fd with res (e.g. -ECANCELED, -ECONNRESET).
  void fail_armed(int fd, int32_t res);
  // Completions injected and not reaped yet.
  size_t ready() const { return ready_.size(); }

  // --- Failure injection and counters ---
  // The next submit_and_wait() returns err (a negative errno) once.
  void fail_next_submit(int err) { submit_error_ = err; }
  // While set, every prep call returns false (a broken ring).
  void set_broken(bool broken) { broken_ = broken; }
  size_t submit_calls() const { return submit_calls_; }
  // How often the code under test said it waits behind a send counted as inline.
  size_t send_awaited_calls() const { return send_awaited_calls_; }
  // The last timeout passed to submit_and_wait().
  int64_t last_timeout_ns() const { return last_timeout_ns_; }
  // recycle() of a buffer that was not handed out (a double recycle or a bogus id):
  // always a bug in the code under test.
  size_t bad_recycles() const { return bad_recycles_; }
  // Buffers delivered by completions and not recycled yet.
  uint32_t buffers_out() const { return buffer_count_ - buffers_free(); }

 private:
  bool record(Op op);
  void run_auto_completions();

  uint32_t buffer_count_;
  uint32_t buffer_size_;
  std::vector<uint8_t> memory_;
  std::deque<uint16_t> free_bids_;  // FIFO, like the kernel's buffer ring
  std::vector<bool> bid_out_;
  std::vector<Op> ops_;
  std::vector<Op> armed_;
  std::vector<Op> auto_pending_;  // prepared since the last submit, for auto_complete
  std::deque<Completion> ready_;
  bool auto_complete_;
  bool close_descriptors_;
  bool broken_ = false;
  int submit_error_ = 0;
  size_t submit_calls_ = 0;
  size_t send_awaited_calls_ = 0;
  int64_t last_timeout_ns_ = 0;
  size_t bad_recycles_ = 0;
};

}  // namespace ringside
