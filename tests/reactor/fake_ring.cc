#include "fake_ring.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ringside {

FakeRing::FakeRing(const Options& options)
    : buffer_count_(options.buffer_count),
      buffer_size_(options.buffer_size),
      memory_(size_t{options.buffer_count} * options.buffer_size),
      bid_out_(options.buffer_count, false),
      auto_complete_(options.auto_complete),
      close_descriptors_(options.close_descriptors) {
  for (unsigned bid = 0; bid < buffer_count_; ++bid)
    free_bids_.push_back(static_cast<uint16_t>(bid));
}

bool FakeRing::record(Op op) {
  if (broken_) return false;
  ops_.push_back(op);
  armed_.push_back(op);
  if (auto_complete_) {
    switch (op.call) {
      case Call::kSend:
      case Call::kShutdown:
      case Call::kClose:
      case Call::kCancelFd:
      case Call::kCancel:
        auto_pending_.push_back(std::move(op));
        break;
      default:
        break;
    }
  }
  return true;
}

bool FakeRing::accept_multishot(int listen_fd, uint64_t token) {
  return record(Op{.call = Call::kAcceptMultishot, .fd = listen_fd, .user_data = token});
}

bool FakeRing::recv_multishot(int fd, uint64_t token) {
  return record(Op{.call = Call::kRecvMultishot, .fd = fd, .user_data = token});
}

bool FakeRing::send(int fd, const void* data, uint32_t len, uint64_t token) {
  return record(Op{.call = Call::kSend,
                   .fd = fd,
                   .user_data = token,
                   .data = std::string(static_cast<const char*>(data), len),
                   .data_ptr = data,
                   .len = len});
}

bool FakeRing::send_parts(int fd, std::span<const iovec> parts, uint64_t token, SendHint hint) {
  if (parts.empty() || parts.size() > kMaxSendParts) return false;
  std::string bytes;
  for (const iovec& part : parts)
    bytes.append(static_cast<const char*>(part.iov_base), part.iov_len);
  uint32_t len = static_cast<uint32_t>(bytes.size());
  return record(Op{.call = Call::kSend,
                   .fd = fd,
                   .user_data = token,
                   .data = std::move(bytes),
                   .data_ptr = parts[0].iov_base,
                   .len = len,
                   .parts = parts.size(),
                   .hint = hint});
}

bool FakeRing::connect(int fd, const sockaddr* addr, socklen_t addr_len, uint64_t token) {
  if (addr_len > sizeof(sockaddr_storage)) return false;
  Op op{.call = Call::kConnect, .fd = fd, .user_data = token, .addr_len = addr_len};
  std::memcpy(&op.addr, addr, addr_len);
  return record(std::move(op));
}

bool FakeRing::shutdown(int fd, int how, uint64_t token) {
  return record(Op{.call = Call::kShutdown, .fd = fd, .user_data = token, .how = how});
}

bool FakeRing::close(int fd, uint64_t token) {
  if (!record(Op{.call = Call::kClose, .fd = fd, .user_data = token})) return false;
  if (close_descriptors_) ::close(fd);  // EBADF for a made-up descriptor: ignored
  return true;
}

bool FakeRing::cancel_fd(int fd, uint64_t token) {
  return record(Op{.call = Call::kCancelFd, .fd = fd, .user_data = token});
}

bool FakeRing::cancel(uint64_t target, uint64_t token) {
  return record(Op{.call = Call::kCancel, .user_data = token, .target = target});
}

bool FakeRing::read(int fd, void* buf, uint32_t len, uint64_t token) {
  return record(Op{.call = Call::kRead, .fd = fd, .user_data = token, .data_ptr = buf, .len = len});
}

int FakeRing::submit_and_wait(int64_t timeout_ns) {
  ++submit_calls_;
  last_timeout_ns_ = timeout_ns;
  if (submit_error_ != 0) {
    int err = submit_error_;
    submit_error_ = 0;
    return err;
  }
  run_auto_completions();
  return static_cast<int>(ready_.size());
}

void FakeRing::run_auto_completions() {
  std::vector<Op> pending;
  pending.swap(auto_pending_);
  for (const Op& op : pending) {
    if (!armed(op.user_data)) continue;  // the test completed it by hand
    switch (op.call) {
      case Call::kSend:
        complete(op.user_data, static_cast<int32_t>(op.len));
        break;
      case Call::kShutdown:
      case Call::kClose:
        complete(op.user_data, 0);
        break;
      case Call::kCancelFd:
      case Call::kCancel: {
        // Like the kernel, which issues SQEs in order, a cancel only sees operations
        // prepared before it (armed_ keeps preparation order).
        std::vector<uint64_t> victims;
        for (const Op& a : armed_) {
          if (a.user_data == op.user_data && a.call == op.call) break;
          if (a.call == Call::kCancelFd || a.call == Call::kCancel) continue;
          bool match = op.call == Call::kCancelFd ? a.fd == op.fd : a.user_data == op.target;
          if (match) victims.push_back(a.user_data);
        }
        for (uint64_t v : victims) complete(v, -ECANCELED);
        complete(op.user_data, victims.empty() ? -ENOENT : static_cast<int32_t>(victims.size()));
        break;
      }
      default:
        break;
    }
  }
}

unsigned FakeRing::reap(std::span<Completion> out) {
  unsigned n = 0;
  while (n < out.size() && !ready_.empty()) {
    out[n++] = ready_.front();
    ready_.pop_front();
  }
  return n;
}

uint8_t* FakeRing::buffer(uint16_t bid) { return memory_.data() + size_t{bid} * buffer_size_; }

void FakeRing::recycle(uint16_t bid) {
  if (bid >= buffer_count_ || !bid_out_[bid]) {
    ++bad_recycles_;
    return;
  }
  bid_out_[bid] = false;
  free_bids_.push_back(bid);
}

std::string FakeRing::describe() const {
  return "fake ring bufs=" + std::to_string(buffer_count_) + "x" + std::to_string(buffer_size_);
}

size_t FakeRing::count(Call call) const {
  return static_cast<size_t>(
      std::count_if(ops_.begin(), ops_.end(), [call](const Op& op) { return op.call == call; }));
}

std::optional<FakeRing::Op> FakeRing::last(Call call) const {
  for (auto it = ops_.rbegin(); it != ops_.rend(); ++it) {
    if (it->call == call) return *it;
  }
  return std::nullopt;
}

bool FakeRing::armed(uint64_t user_data) const {
  return std::any_of(armed_.begin(), armed_.end(),
                     [user_data](const Op& op) { return op.user_data == user_data; });
}

std::vector<uint64_t> FakeRing::armed_on(int fd) const {
  std::vector<uint64_t> tokens;
  for (const Op& op : armed_) {
    if (op.fd == fd) tokens.push_back(op.user_data);
  }
  return tokens;
}

int FakeRing::complete(uint64_t user_data, int32_t res, bool more, std::string_view bytes) {
  auto op = std::find_if(armed_.begin(), armed_.end(),
                         [user_data](const Op& a) { return a.user_data == user_data; });
  Completion c{.user_data = user_data, .res = res, .more = more, .buffer_id = -1};
  if (!bytes.empty()) {
    if (op != armed_.end() && op->call == Call::kRead) {
      std::memcpy(const_cast<void*>(op->data_ptr), bytes.data(),
                  std::min<size_t>(bytes.size(), op->len));
    } else if (free_bids_.empty()) {
      c.res = -ENOBUFS;
      c.more = false;
    } else {
      uint16_t bid = free_bids_.front();
      free_bids_.pop_front();
      bid_out_[bid] = true;
      std::memcpy(buffer(bid), bytes.data(), std::min<size_t>(bytes.size(), buffer_size_));
      c.buffer_id = bid;
    }
  }
  if (!c.more && op != armed_.end()) armed_.erase(op);
  ready_.push_back(c);
  return c.buffer_id;
}

int FakeRing::deliver(uint64_t user_data, std::string_view bytes, bool more) {
  // The kernel fills one provided buffer per completion: split like it does.
  int bid = -1;
  do {
    std::string_view part = bytes.substr(0, buffer_size_);
    bytes.remove_prefix(part.size());
    bid = complete(user_data, static_cast<int32_t>(part.size()), bytes.empty() ? more : true, part);
    if (bid < 0) return -1;
  } while (!bytes.empty());
  return bid;
}

void FakeRing::fail_armed(int fd, int32_t res) {
  for (uint64_t token : armed_on(fd)) complete(token, res);
}

}  // namespace ringside
