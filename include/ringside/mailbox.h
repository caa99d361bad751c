// Mailbox: how the control thread (and the admin thread) talk to one worker. A bounded
// lock-free multi-producer, single-consumer queue of move-only messages, plus an eventfd
// that the worker keeps a read armed on (OpCode::kWake) so a post wakes its event loop.
// Messages are rare (drain, stop, a new TLS generation), so a message may allocate; the
// per-connection path never touches a mailbox.
//
// Worker side, once per wake:
//   on kWake completion: mailbox.drain([&](Mailbox::Message&& m) { m(); });
//                        ring.read(mailbox.event_fd(), &value, 8, wake_token);
// Draining after every completed read and then re-arming loses no wake-up: a post that
// lands after the drain leaves the eventfd counter non-zero, so the new read completes
// at once.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "ringside/result.h"

namespace ringside {

// A move-only void() callable (std::function requires copyable targets; C++23's
// std::move_only_function is not in g++ 12's C++20 mode).
class UniqueFunction {
 public:
  UniqueFunction() = default;
  template <class F>
  requires(!std::is_same_v<std::decay_t<F>, UniqueFunction> && std::is_invocable_r_v<void, F&>)
      UniqueFunction(F&& f)  // NOLINT(google-explicit-constructor): lambdas convert implicitly
      : impl_(std::make_unique<Impl<std::decay_t<F>>>(std::forward<F>(f))) {}
  UniqueFunction(UniqueFunction&&) noexcept = default;
  UniqueFunction& operator=(UniqueFunction&&) noexcept = default;

  // Calls the target; the function must not be empty.
  void operator()() { impl_->call(); }
  explicit operator bool() const { return impl_ != nullptr; }

 private:
  struct Base {
    virtual ~Base() = default;
    virtual void call() = 0;
  };
  template <class F>
  struct Impl final : Base {
    explicit Impl(F&& fn) : f(std::move(fn)) {}
    explicit Impl(const F& fn) : f(fn) {}
    void call() override { f(); }
    F f;
  };
  std::unique_ptr<Base> impl_;
};

// Bounded MPSC queue (Vyukov's sequenced ring): push() from any thread, pop() from one
// consumer thread. Lock-free for the consumer; a producer retries only while another
// producer is between claiming and filling a cell. Producer and consumer positions live
// on separate cache lines so the two sides do not bounce one line between cores.
template <class T>
class MpscQueue {
 public:
  // capacity is rounded up to a power of two (at least 2).
  explicit MpscQueue(size_t capacity) {
    size_t n = 2;
    while (n < capacity) n <<= 1;
    mask_ = n - 1;
    cells_ = std::make_unique<Cell[]>(n);
    for (size_t i = 0; i < n; ++i) cells_[i].seq.store(i, std::memory_order_relaxed);
  }
  MpscQueue(const MpscQueue&) = delete;
  MpscQueue& operator=(const MpscQueue&) = delete;
  ~MpscQueue() {
    T item;
    while (pop(item)) {
    }
  }

  // Moves value in and returns true, or returns false (value untouched) when full.
  bool push(T&& value) {
    size_t pos = tail_.load(std::memory_order_relaxed);
    Cell* cell;
    for (;;) {
      cell = &cells_[pos & mask_];
      size_t seq = cell->seq.load(std::memory_order_acquire);
      auto diff = static_cast<std::ptrdiff_t>(seq - pos);
      if (diff == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) break;
      } else if (diff < 0) {
        return false;  // the cell still holds an item from one lap ago: full
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
    new (cell->storage) T(std::move(value));
    cell->seq.store(pos + 1, std::memory_order_release);
    return true;
  }

  // Consumer only: moves the oldest item into out and returns true, or returns false.
  bool pop(T& out) {
    Cell* cell = &cells_[head_ & mask_];
    if (cell->seq.load(std::memory_order_acquire) != head_ + 1) return false;
    T* item = std::launder(reinterpret_cast<T*>(cell->storage));
    out = std::move(*item);
    item->~T();
    cell->seq.store(head_ + mask_ + 1, std::memory_order_release);
    ++head_;
    return true;
  }

  size_t capacity() const { return mask_ + 1; }

 private:
  static constexpr size_t kCacheLine = 64;
  struct Cell {
    std::atomic<size_t> seq{0};
    alignas(T) unsigned char storage[sizeof(T)];
  };

  alignas(kCacheLine) std::atomic<size_t> tail_{0};  // producers
  alignas(kCacheLine) size_t head_ = 0;              // the consumer
  alignas(kCacheLine) size_t mask_ = 0;
  std::unique_ptr<Cell[]> cells_;
};

class Mailbox {
 public:
  using Message = UniqueFunction;

  // Creates a mailbox holding up to `capacity` undelivered messages, with its eventfd.
  static Result<std::unique_ptr<Mailbox>> make(size_t capacity = 256);
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;
  // Destroys undelivered messages and closes the eventfd.
  ~Mailbox();

  // Any thread. Queues the message and wakes the worker. Returns false when the mailbox
  // is full; the message is then left untouched so the caller may retry.
  bool post(Message&& message);

  // The worker thread only. Calls fn(Message&&) for each queued message in order, at most
  // max_messages of them, and returns how many it handled. fn may post to this mailbox.
  template <class Fn>
  size_t drain(Fn&& fn, size_t max_messages = SIZE_MAX) {
    size_t handled = 0;
    Message message;
    while (handled < max_messages && queue_.pop(message)) {
      ++handled;
      fn(std::move(message));
    }
    return handled;
  }

  // The eventfd (blocking, close-on-exec) to keep a read armed on; each post adds 1.
  int event_fd() const { return event_fd_; }

 private:
  Mailbox(int event_fd, size_t capacity) : queue_(capacity), event_fd_(event_fd) {}

  MpscQueue<Message> queue_;
  int event_fd_;
};

}  // namespace ringside
