// TimerWheel: the per-worker timer set for connection deadlines (connect, handshake,
// idle, request). Intrusive and single-threaded: a connection embeds a TimerNode, and
// moving its deadline is an O(1) unlink + link with no allocation. The wheel is a ring
// of `slots` buckets of `tick_ms` each; a deadline more than one revolution away stays
// in its bucket and is skipped until due, so 1 h idle timeouts cost one relink per
// revolution.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace ringside {

// Embedded in the owner of a timer. While linked, it must not move or be destroyed
// without cancel() (a linked node is part of the wheel's lists).
struct TimerNode {
  TimerNode* prev = nullptr;
  TimerNode* next = nullptr;
  uint64_t deadline_ms = 0;

  bool linked() const { return next != nullptr; }
};

class TimerWheel {
 public:
  // now_ms: the current time on the clock later passed to advance() (monotonic_ms()).
  // slots is rounded up to a power of two.
  explicit TimerWheel(uint64_t now_ms, uint32_t tick_ms = 10, uint32_t slots = 1024);
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;
  // Does not touch nodes still scheduled: their owners are usually destroyed first (a
  // worker's connections go before its wheel). Such a node keeps linked() == true and
  // must not be scheduled or cancelled again.
  ~TimerWheel() = default;

  // Links node to fire at deadline_ms, unlinking it first if it was scheduled (a no-op
  // when it already has that deadline). A deadline that has already passed fires on the
  // next advance().
  void schedule(TimerNode* node, uint64_t deadline_ms);
  // Unlinks node; a no-op if it is not scheduled.
  void cancel(TimerNode* node);

  // Fires every node whose deadline <= now_ms: unlinks it, then calls fn(TimerNode*).
  // fn may schedule or cancel any node, including the one it was given; a node it
  // schedules with a deadline <= now_ms fires in this call or the next one.
  template <class Fn>
  void advance(uint64_t now_ms, Fn&& fn);

  // How long the event loop may sleep before a timer could be due: 0 if one is due
  // now, -1 if no timer is scheduled. Never later than the earliest deadline; may be
  // earlier by up to a tick (or a revolution for far deadlines), or, after the earliest
  // node was cancelled or moved later, as early as that node's deadline (once: the
  // call at or after it scans again). Most calls cost a comparison: the loop asks once
  // per turn, and a keep-alive connection moves its timers on every request.
  int64_t ms_until_next(uint64_t now_ms) const;
  // The scan behind ms_until_next(): the start of the next occupied slot's tick, or the
  // exact wait for nodes of the current tick. Public for tests.
  int64_t scan_until_next(uint64_t now_ms) const;

  // Number of scheduled nodes.
  size_t size() const { return size_; }

 private:
  // Each slot is a circular list with a sentinel, so unlinking needs no slot index.
  static void link_after(TimerNode* sentinel, TimerNode* node) {
    node->prev = sentinel->prev;
    node->next = sentinel;
    sentinel->prev->next = node;
    sentinel->prev = node;
  }
  static void unlink(TimerNode* node) {
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node->next = nullptr;
  }
  static bool list_empty(const TimerNode* sentinel) { return sentinel->next == sentinel; }

  void insert(TimerNode* node);
  void mark_occupied(size_t slot) { occupied_[slot / 64] |= uint64_t{1} << (slot % 64); }

  uint32_t tick_ms_;
  uint32_t mask_;          // slots - 1
  uint64_t current_tick_;  // the tick of the last advance(): its slot is re-scanned
  size_t size_ = 0;
  // No scheduled node's deadline is earlier (see ms_until_next()).
  mutable uint64_t bound_ms_ = 0;
  std::unique_ptr<TimerNode[]> slots_;
  // Bit per slot that may be non-empty (set on insert, cleared lazily when found
  // empty) so ms_until_next() scans 16 words, not 1024 lists.
  mutable std::unique_ptr<uint64_t[]> occupied_;
};

// CLOCK_MONOTONIC_COARSE in milliseconds: cheap (vDSO, no syscall) and precise enough
// for timeouts of tens of milliseconds and more.
uint64_t monotonic_ms();

template <class Fn>
void TimerWheel::advance(uint64_t now_ms, Fn&& fn) {
  const uint64_t target_tick = now_ms / tick_ms_;
  if (target_tick < current_tick_) return;
  const uint64_t first_tick =
      target_tick - current_tick_ > mask_ ? target_tick - mask_ : current_tick_;
  // Set first, so nodes scheduled by callbacks land at or after the target tick.
  current_tick_ = target_tick;
  for (uint64_t tick = first_tick; tick <= target_tick; ++tick) {
    TimerNode* slot = &slots_[tick & mask_];
    if (list_empty(slot)) continue;
    // Splice the slot into a local list so callbacks can freely relink nodes (even
    // into this slot) without disturbing the walk.
    TimerNode pending;
    pending.prev = slot->prev;
    pending.next = slot->next;
    pending.next->prev = &pending;
    pending.prev->next = &pending;
    slot->prev = slot->next = slot;
    while (!list_empty(&pending)) {
      TimerNode* node = pending.next;
      unlink(node);
      --size_;
      if (node->deadline_ms <= now_ms) {
        fn(node);
      } else {
        insert(node);
      }
    }
  }
}

}  // namespace ringside
