// The reactor's interface: everything the rest of ringside knows about io_uring.
// Only src/reactor/ includes <liburing.h>; protocol code and tests see this header, and
// tests drive it with FakeRing (tests/reactor/fake_ring.h) to inject completions.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "ringside/result.h"

namespace ringside {

// Which operation finished. Packed into the SQE's user_data with the owner's slot.
enum class OpCode : uint8_t {
  kNone = 0,
  kAccept,    // multishot accept on a listener
  kRecv,      // multishot recv into a provided buffer
  kSend,      // one send of a queued span
  kConnect,   // connect of an upstream socket
  kShutdown,  // shutdown(SHUT_WR) to relay a half-close
  kClose,     // close of a descriptor
  kCancel,    // an async cancel request itself
  kWake,      // read on the worker's mailbox eventfd
};

// user_data layout: slot (32 bits) | generation (16) | side (8) | op (8).
// The generation detects completions for a slot that was freed and reused.
struct Token {
  uint32_t slot = 0;
  uint16_t gen = 0;
  uint8_t side = 0;
  OpCode op = OpCode::kNone;

  constexpr uint64_t pack() const {
    return (uint64_t{slot} << 32) | (uint64_t{gen} << 16) | (uint64_t{side} << 8) |
           static_cast<uint64_t>(op);
  }
  static constexpr Token unpack(uint64_t v) {
    return Token{static_cast<uint32_t>(v >> 32), static_cast<uint16_t>(v >> 16),
                 static_cast<uint8_t>(v >> 8), static_cast<OpCode>(v & 0xff)};
  }
};

// One finished operation.
struct Completion {
  uint64_t user_data = 0;
  int32_t res = 0;         // bytes, a descriptor, 0, or -errno
  bool more = false;       // a multishot operation stays armed
  int32_t buffer_id = -1;  // provided buffer holding the received bytes, or -1
};

struct RingOptions {
  unsigned sq_entries = 1024;
  unsigned cq_entries = 16384;   // sized so the CQ never overflows in practice
  unsigned buffer_count = 1024;  // provided buffers; a power of two
  unsigned buffer_size = 16 * 1024 + 512;
  bool single_issuer = true;  // IORING_SETUP_SINGLE_ISSUER|DEFER_TASKRUN when the kernel has it
};

// One io_uring with one provided-buffer ring, owned and used by exactly one thread.
// Every prep call queues an SQE (flushing to the kernel if the SQ is full) and never
// blocks; it returns false only when the ring itself is broken.
class IoRing {
 public:
  virtual ~IoRing() = default;

  virtual bool accept_multishot(int listen_fd, uint64_t token) = 0;
  // Multishot recv selecting buffers from the provided-buffer ring. It ends (more=false)
  // on EOF, error, or -ENOBUFS when the buffer ring is empty (back-pressure: re-arm later).
  virtual bool recv_multishot(int fd, uint64_t token) = 0;
  // data must stay valid until the completion arrives.
  virtual bool send(int fd, const void* data, uint32_t len, uint64_t token) = 0;
  // One send of several spans (a sendmsg), at most kMaxSendParts of them: a queue of
  // records leaves in one operation and wakes the reader once, not once per record. The
  // iovec array is copied into ring-owned storage (it need not outlive the call); the
  // bytes it points at must stay valid until the completion arrives.
  //
  // hint: kMayWait when the socket's previous send went out short (its buffer is full),
  // so this one will likely wait for room; the ring then does not count on it completing
  // while it is submitted (see the io_uring backend's submit_and_wait).
  static constexpr size_t kMaxSendParts = 8;
  enum class SendHint { kLikelyInline, kMayWait };
  // Sends up to this size with kLikelyInline are the ones a backend counts on.
  static constexpr size_t kInlineSendBytes = 64 * 1024;
  virtual bool send_parts(int fd, std::span<const iovec> parts, uint64_t token,
                          SendHint hint = SendHint::kLikelyInline) = 0;
  // Work now waits behind a kLikelyInline send queued since the last submit_and_wait
  // (more bytes for its socket, a shutdown): the next wait must not sleep past that
  // send's own completion. Once per such send.
  virtual void send_awaited() {}
  // addr is copied into ring-owned storage; it need not outlive the call. At most
  // sizeof(sockaddr_storage) bytes.
  virtual bool connect(int fd, const sockaddr* addr, socklen_t addr_len, uint64_t token) = 0;
  virtual bool shutdown(int fd, int how, uint64_t token) = 0;
  // Its completion alone may not end a wait (a socket's close completes while submitted;
  // see the io_uring backend's submit_and_wait): nothing should wait on it.
  virtual bool close(int fd, uint64_t token) = 0;
  // Cancels every pending request on fd (IORING_ASYNC_CANCEL_FD|ALL).
  virtual bool cancel_fd(int fd, uint64_t token) = 0;
  // Cancels the request(s) whose user_data equals target.
  virtual bool cancel(uint64_t target, uint64_t token) = 0;
  // A plain read into buf (used for the mailbox eventfd).
  virtual bool read(int fd, void* buf, uint32_t len, uint64_t token) = 0;

  // Submits everything queued and waits until at least one completion is ready or
  // timeout_ns passes (0: do not wait; negative: no time limit). Returns the number of
  // ready completions, or -errno on a real ring failure (-EINTR and -ETIME are not
  // failures: they return 0).
  virtual int submit_and_wait(int64_t timeout_ns) = 0;
  // Moves up to out.size() ready completions into out, in order, and marks them seen.
  // Returns how many were moved.
  virtual unsigned reap(std::span<Completion> out) = 0;

  // Provided buffers: the bytes of buffer bid (buffer_size() long); recycle() hands it
  // back to the kernel. Every buffer a completion delivers must be recycled exactly once.
  virtual uint8_t* buffer(uint16_t bid) = 0;
  virtual void recycle(uint16_t bid) = 0;
  virtual uint32_t buffer_size() const = 0;
  virtual uint32_t buffers_free() const = 0;

  // Which setup features the kernel granted, for logs and /stats.
  virtual std::string describe() const = 0;

  // How many times the kernel reported a CQ overflow (completions parked in its backlog
  // because the CQ was full; none are lost with IORING_FEAT_NODROP, but the CQ is too
  // small). Should stay 0; exported to /stats.
  virtual uint64_t cq_overflow_events() const { return 0; }
};

// Creates the real io_uring backed ring. Fails with a clear Error (e.g. io_uring disabled).
// Call it on the thread that will use the ring: IORING_SETUP_SINGLE_ISSUER binds the
// ring to the creating thread, and submissions from any other thread fail.
Result<std::unique_ptr<IoRing>> make_io_uring(const RingOptions& options);

}  // namespace ringside
