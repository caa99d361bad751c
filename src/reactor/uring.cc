// The io_uring backend of IoRing: the only file that includes <liburing.h>.
#include <liburing.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "ringside/io.h"

namespace ringside {
namespace {

constexpr uint16_t kBufferGroup = 0;
// The kernel caps a provided-buffer ring at 2^15 entries.
constexpr unsigned kMaxBuffers = 1u << 15;
// IORING_FEAT_MIN_TIMEOUT (6.12): io_uring_getevents_arg's fourth field (`pad` in the
// liburing 2.3 headers) is min_wait_usec. Not in those headers, so named here.
constexpr unsigned kFeatMinTimeout = 1u << 15;
// A send no bigger than this, to a socket whose last send went out whole, is expected
// to complete while it is submitted (the socket buffer takes it at once).
// The longest a wait that counts on inline send completions may hold back events when
// one of those sends did wait after all (its socket buffer was full): see submit_and_wait.
constexpr uint32_t kBatchWaitUs = 1000;

// Memory from mmap: page aligned, and unmapping it after the ring is gone turns any
// late kernel write into -EFAULT rather than a write into reused heap memory.
struct Mapping {
  void* addr = nullptr;
  size_t len = 0;

  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (addr != nullptr) munmap(addr, len);
  }
  bool map(size_t bytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;
    addr = p;
    len = bytes;
    return true;
  }
};

class UringRing final : public IoRing {
 public:
  UringRing() = default;
  ~UringRing() override {
    if (!initialized_) return;
    if (buf_ring_registered_) io_uring_unregister_buf_ring(&ring_, kBufferGroup);
    io_uring_queue_exit(&ring_);
    // buffer_memory_ and buf_ring_memory_ are unmapped after the ring is gone.
  }

  Result<void> init(const RingOptions& options);

  bool accept_multishot(int listen_fd, uint64_t token) override {
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) return false;
    io_uring_prep_multishot_accept(sqe, listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, token);
    return true;
  }

  bool recv_multishot(int fd, uint64_t token) override {
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) return false;
    io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = kBufferGroup;
    io_uring_sqe_set_data64(sqe, token);
    return true;
  }

  bool send(int fd, const void* data, uint32_t len, uint64_t token) override {
    return send_one(fd, data, len, token, SendHint::kLikelyInline);
  }

  bool send_parts(int fd, std::span<const iovec> parts, uint64_t token, SendHint hint) override {
    if (parts.empty() || parts.size() > kMaxSendParts) return false;
    if (parts.size() == 1) {
      return send_one(fd, parts[0].iov_base, static_cast<uint32_t>(parts[0].iov_len), token, hint);
    }
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) return false;
    size_t total = 0;
    for (const iovec& part : parts) total += part.iov_len;
    count_send(total, hint);
    // The kernel imports the msghdr and the iovecs when it consumes the SQE
    // (IORING_FEAT_SUBMIT_STABLE), so, as for connect addresses, a ring of sq_entries
    // slots is never overwritten while an SQE still points at one.
    SendSlot& slot = send_slots_[next_send_slot_];
    next_send_slot_ = (next_send_slot_ + 1) % sq_entries_;
    std::memcpy(slot.iov, parts.data(), parts.size() * sizeof(iovec));
    slot.msg = msghdr{};
    slot.msg.msg_iov = slot.iov;
    slot.msg.msg_iovlen = parts.size();
    io_uring_prep_sendmsg(sqe, fd, &slot.msg, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, token);
    return true;
  }

  bool connect(int fd, const sockaddr* addr, socklen_t addr_len, uint64_t token) override {
    if (addr_len > sizeof(sockaddr_storage)) return false;
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) return false;
    // IORING_FEAT_SUBMIT_STABLE (checked at setup): the kernel has copied the address
    // once it consumed the SQE. The SQ never holds more than sq_entries SQEs, so a ring
    // of sq_entries addresses is never overwritten before its SQE is consumed.
    sockaddr_storage* slot = &connect_addrs_[next_connect_addr_];
    next_connect_addr_ = (next_connect_addr_ + 1) % sq_entries_;
    std::memcpy(slot, addr, addr_len);
    io_uring_prep_connect(sqe, fd, reinterpret_cast<sockaddr*>(slot), addr_len);
    io_uring_sqe_set_data64(sqe, token);
    return true;
  }

  bool shutdown(int fd, int how, uint64_t token) override {
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) return false;
    io_uring_prep_shutdown(sqe, fd, how);
    io_uring_sqe_set_data64(sqe, token);
    return true;
  }

  bool close(int fd, uint64_t token) override {
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) return false;
    io_uring_prep_close(sqe, fd);
    io_uring_sqe_set_data64(sqe, token);
    // A socket's close completes while it is submitted (sockets have no ->flush to punt
    // to a worker thread), and nothing waits on it: the wait looks past it like past an
    // inline send's completion. A close that did not complete inline is seen, at the
    // latest, kBatchWaitUs later with whatever else completes.
    ++inline_ops_;
    return true;
  }

  bool cancel_fd(int fd, uint64_t token) override {
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) return false;
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, token);
    return true;
  }

  bool cancel(uint64_t target, uint64_t token) override {
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) return false;
    io_uring_prep_cancel64(sqe, target, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, token);
    return true;
  }

  bool read(int fd, void* buf, uint32_t len, uint64_t token) override {
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) return false;
    // Offset -1: the file position, which is what a pipe or an eventfd wants.
    io_uring_prep_read(sqe, fd, buf, len, static_cast<__u64>(-1));
    io_uring_sqe_set_data64(sqe, token);
    return true;
  }

  int submit_and_wait(int64_t timeout_ns) override {
    const unsigned inline_ops = inline_ops_;
    inline_ops_ = 0;
    int ret;
    if (timeout_ns == 0) {
      // With DEFER_TASKRUN, completions are only posted when this thread enters the
      // kernel asking for events, so "do not wait" still enters once.
      ret = io_uring_submit_and_get_events(&ring_);
    } else if (inline_ops > 0 && min_timeout_ && timeout_ns > int64_t{kBatchWaitUs} * 1000) {
      ret = submit_and_wait_past_sends(inline_ops, timeout_ns);
    } else if (timeout_ns < 0) {
      ret = io_uring_submit_and_wait(&ring_, 1);
    } else {
      __kernel_timespec ts{};
      ts.tv_sec = timeout_ns / 1'000'000'000;
      ts.tv_nsec = timeout_ns % 1'000'000'000;
      io_uring_cqe* cqe = nullptr;
      ret = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
    // -EBUSY/-EAGAIN: the kernel holds overflowed completions; reaping makes room.
    if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY && ret != -EAGAIN) {
      return ret;
    }
    return static_cast<int>(io_uring_cq_ready(&ring_));
  }

  unsigned reap(std::span<Completion> out) override {
    if (io_uring_cq_has_overflow(&ring_)) note_overflow();
    unsigned total = 0;
    io_uring_cqe* cqes[64];
    while (total < out.size()) {
      size_t want = out.size() - total;
      unsigned n =
          io_uring_peek_batch_cqe(&ring_, cqes, static_cast<unsigned>(want < 64 ? want : 64));
      if (n == 0) break;
      for (unsigned i = 0; i < n; ++i) {
        const io_uring_cqe* cqe = cqes[i];
        Completion& c = out[total + i];
        c.user_data = cqe->user_data;
        c.res = cqe->res;
        c.more = (cqe->flags & IORING_CQE_F_MORE) != 0;
        if (cqe->flags & IORING_CQE_F_BUFFER) {
          c.buffer_id = static_cast<int32_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
          ++buffers_out_;
        } else {
          c.buffer_id = -1;
        }
      }
      io_uring_cq_advance(&ring_, n);
      total += n;
    }
    return total;
  }

  uint8_t* buffer(uint16_t bid) override {
    return static_cast<uint8_t*>(buffer_memory_.addr) + size_t{bid} * buffer_size_;
  }

  void recycle(uint16_t bid) override {
    io_uring_buf_ring_add(buf_ring_, buffer(bid), buffer_size_, bid,
                          io_uring_buf_ring_mask(buffer_count_), 0);
    io_uring_buf_ring_advance(buf_ring_, 1);
    --buffers_out_;
  }

  uint32_t buffer_size() const override { return buffer_size_; }
  uint32_t buffers_free() const override { return buffer_count_ - buffers_out_; }

  std::string describe() const override {
    std::string flags;
    auto add = [&](unsigned flag, const char* name) {
      if ((setup_flags_ & flag) == 0) return;
      if (!flags.empty()) flags += '|';
      flags += name;
    };
    add(IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER");
    add(IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN");
    add(IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN");
    add(IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL");
    if (flags.empty()) flags = "none";
    if (min_timeout_) flags += " min-wait";
    return "io_uring sq=" + std::to_string(ring_.sq.ring_entries) +
           " cq=" + std::to_string(ring_.cq.ring_entries) + " flags=" + flags +
           " bufs=" + std::to_string(buffer_count_) + "x" + std::to_string(buffer_size_);
  }

  uint64_t cq_overflow_events() const override { return overflow_events_; }

 private:
  bool send_one(int fd, const void* data, uint32_t len, uint64_t token, SendHint hint) {
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) return false;
    // MSG_NOSIGNAL: a peer that went away must give -EPIPE, not kill the process.
    io_uring_prep_send(sqe, fd, data, len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, token);
    count_send(len, hint);
    return true;
  }

  void send_awaited() override {
    if (inline_ops_ > 0) --inline_ops_;
  }

  void count_send(size_t len, SendHint hint) {
    if (hint == SendHint::kLikelyInline && len <= kInlineSendBytes) ++inline_ops_;
  }

  // A full SQ is flushed to the kernel and the request retried once.
  io_uring_sqe* get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe != nullptr) return sqe;
    io_uring_submit(&ring_);
    return io_uring_get_sqe(&ring_);
  }

  // One io_uring_enter that submits and sleeps until an event beyond the own completions
  // of the sends (and closes) just submitted. A small send to a socket with room completes while it
  // is submitted and posts its CQE at once; waiting for one CQE would then return straight away and
  // the loop would enter again to sleep: two entries per wake-up instead of one. So the wait asks
  // for inline_ops + 1 completions. If one of those sends found its socket full and waits for room,
  // that count may not be reached by the events that do arrive: the kernel's min-wait (6.12+) ends
  // the sleep kBatchWaitUs after it began whenever any completion is ready, so such a turn holds
  // events back for at most that long.
  int submit_and_wait_past_sends(unsigned inline_ops, int64_t timeout_ns) {
    io_uring_sq* sq = &ring_.sq;
    const unsigned tail = sq->sqe_tail;
    if (sq->sqe_head != tail) {
      sq->sqe_head = tail;
      io_uring_smp_store_release(sq->ktail, tail);
    }
    const unsigned to_submit = tail - *sq->khead;
    __kernel_timespec ts{};
    ts.tv_sec = timeout_ns / 1'000'000'000;
    ts.tv_nsec = timeout_ns % 1'000'000'000;
    io_uring_getevents_arg arg{};
    arg.pad = kBatchWaitUs;  // min_wait_usec
    arg.ts = reinterpret_cast<uint64_t>(&ts);
    unsigned flags = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
    int fd = ring_.ring_fd;
    if (ring_fd_registered_) {
      flags |= IORING_ENTER_REGISTERED_RING;
      fd = ring_.enter_ring_fd;
    }
    long ret =
        ::syscall(__NR_io_uring_enter, fd, to_submit, inline_ops + 1, flags, &arg, sizeof(arg));
    return ret < 0 ? -errno : static_cast<int>(ret);
  }

  void note_overflow() {
    if (overflow_events_++ == 0) {
      std::fprintf(stderr,
                   "ringside: io_uring CQ overflow (cq=%u): completions wait in the kernel "
                   "backlog; raise cq_entries\n",
                   ring_.cq.ring_entries);
    }
  }

  io_uring ring_{};
  bool initialized_ = false;
  bool buf_ring_registered_ = false;
  unsigned setup_flags_ = 0;
  unsigned sq_entries_ = 0;
  bool min_timeout_ = false;         // IORING_FEAT_MIN_TIMEOUT
  bool ring_fd_registered_ = false;  // io_uring_register_ring_fd succeeded
  unsigned inline_ops_ = 0;  // sends and closes queued since the last submit expected inline
  Mapping buf_ring_memory_;
  Mapping buffer_memory_;
  io_uring_buf_ring* buf_ring_ = nullptr;
  uint32_t buffer_count_ = 0;
  uint32_t buffer_size_ = 0;
  uint32_t buffers_out_ = 0;  // delivered by completions and not yet recycled
  uint64_t overflow_events_ = 0;
  std::unique_ptr<sockaddr_storage[]> connect_addrs_;
  unsigned next_connect_addr_ = 0;
  struct SendSlot {
    msghdr msg;
    iovec iov[kMaxSendParts];
  };
  std::unique_ptr<SendSlot[]> send_slots_;
  unsigned next_send_slot_ = 0;
};

Result<void> UringRing::init(const RingOptions& options) {
  const unsigned count = options.buffer_count;
  if (count == 0 || count > kMaxBuffers || (count & (count - 1)) != 0) {
    return make_error(ErrorKind::kConfig, Side::kInternal,
                      "io_uring buffer_count must be a power of two in [1, 32768]", EINVAL);
  }
  if (options.buffer_size == 0 || options.sq_entries == 0) {
    return make_error(ErrorKind::kConfig, Side::kInternal,
                      "io_uring sq_entries and buffer_size must be positive", EINVAL);
  }

  // Preferred set, then what older kernels accept; each retry only on -EINVAL.
  const unsigned kCqSize = IORING_SETUP_CQSIZE;  // CQ sized on its own: many multishot CQEs per SQE
  const unsigned kSubmitAll =
      IORING_SETUP_SUBMIT_ALL;  // one bad SQE must not strand the rest of the batch
  const unsigned kSingleIssuer =
      IORING_SETUP_SINGLE_ISSUER;  // one thread per ring: kernel skips submit locking
  const unsigned kDeferTaskrun =
      IORING_SETUP_DEFER_TASKRUN;  // completions run when we reap: no IPIs, better batching
  const unsigned kCoopTaskrun =
      IORING_SETUP_COOP_TASKRUN;  // without DEFER: no interrupting IPI per completion
  unsigned candidates[3];
  unsigned n_candidates = 0;
  if (options.single_issuer) {
    candidates[n_candidates++] = kCqSize | kSubmitAll | kSingleIssuer | kDeferTaskrun;
  }
  candidates[n_candidates++] = kCqSize | kSubmitAll | kCoopTaskrun;
  candidates[n_candidates++] = kCqSize;

  int ret = -EINVAL;
  for (unsigned i = 0; i < n_candidates; ++i) {
    io_uring_params params{};
    params.flags = candidates[i];
    params.cq_entries =
        options.cq_entries < options.sq_entries ? options.sq_entries : options.cq_entries;
    ret = io_uring_queue_init_params(options.sq_entries, &ring_, &params);
    if (ret == 0) {
      setup_flags_ = params.flags;
      break;
    }
    if (ret != -EINVAL) break;
  }
  if (ret < 0) {
    if (ret == -EPERM || ret == -ENOSYS || ret == -EACCES) {
      return make_error(ErrorKind::kResource, Side::kInternal,
                        "io_uring is unavailable (disabled by the kernel.io_uring_disabled "
                        "sysctl, a seccomp policy, or an old kernel)",
                        -ret);
    }
    if (ret == -ENOMEM || ret == -EMFILE || ret == -ENFILE) {
      return make_error(ErrorKind::kResource, Side::kInternal,
                        "io_uring setup failed: out of memory or descriptors (check "
                        "RLIMIT_MEMLOCK and RLIMIT_NOFILE)",
                        -ret);
    }
    return make_error(ErrorKind::kResource, Side::kInternal, "io_uring setup failed", -ret);
  }
  initialized_ = true;
  sq_entries_ = ring_.sq.ring_entries;

  if ((ring_.features & IORING_FEAT_SUBMIT_STABLE) == 0 ||
      (ring_.features & IORING_FEAT_NODROP) == 0) {
    return make_error(ErrorKind::kResource, Side::kInternal,
                      "io_uring too old: needs IORING_FEAT_SUBMIT_STABLE and NODROP (5.5+)",
                      ENOTSUP);
  }
  connect_addrs_.reset(new sockaddr_storage[sq_entries_]);
  send_slots_.reset(new SendSlot[sq_entries_]);
  // A registered ring fd saves an fd lookup on every io_uring_enter; optional.
  ring_fd_registered_ = io_uring_register_ring_fd(&ring_) == 1;
  min_timeout_ = (ring_.features & kFeatMinTimeout) != 0;

  buffer_count_ = count;
  buffer_size_ = options.buffer_size;
  if (!buf_ring_memory_.map(count * sizeof(io_uring_buf)) ||
      !buffer_memory_.map(size_t{count} * buffer_size_)) {
    return make_error(ErrorKind::kResource, Side::kInternal,
                      "cannot map memory for the provided-buffer ring", errno);
  }
  buf_ring_ = static_cast<io_uring_buf_ring*>(buf_ring_memory_.addr);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(buf_ring_);
  reg.ring_entries = count;
  reg.bgid = kBufferGroup;
  ret = io_uring_register_buf_ring(&ring_, &reg, 0);
  if (ret < 0) {
    return make_error(ErrorKind::kResource, Side::kInternal,
                      "io_uring provided-buffer ring registration failed (kernel 5.19+)", -ret);
  }
  buf_ring_registered_ = true;
  io_uring_buf_ring_init(buf_ring_);
  const int mask = io_uring_buf_ring_mask(count);
  for (unsigned bid = 0; bid < count; ++bid) {
    io_uring_buf_ring_add(buf_ring_, buffer(static_cast<uint16_t>(bid)), buffer_size_,
                          static_cast<uint16_t>(bid), mask, static_cast<int>(bid));
  }
  io_uring_buf_ring_advance(buf_ring_, static_cast<int>(count));
  return {};
}

}  // namespace

Result<std::unique_ptr<IoRing>> make_io_uring(const RingOptions& options) {
  auto ring = std::make_unique<UringRing>();
  Result<void> ok = ring->init(options);
  if (!ok) return ok.error();
  return std::unique_ptr<IoRing>(std::move(ring));
}

}  // namespace ringside
