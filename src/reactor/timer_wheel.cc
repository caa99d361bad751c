#include "ringside/timer_wheel.h"

#include <time.h>

#include <algorithm>
#include <bit>

namespace ringside {

TimerWheel::TimerWheel(uint64_t now_ms, uint32_t tick_ms, uint32_t slots)
    : tick_ms_(tick_ms == 0 ? 1 : tick_ms),
      mask_(std::bit_ceil(slots < 64 ? 64u : slots) - 1),
      current_tick_(now_ms / tick_ms_),
      slots_(new TimerNode[mask_ + 1]),
      occupied_(new uint64_t[(mask_ + 1) / 64]()) {
  for (uint32_t i = 0; i <= mask_; ++i) slots_[i].prev = slots_[i].next = &slots_[i];
}

void TimerWheel::schedule(TimerNode* node, uint64_t deadline_ms) {
  if (node->linked()) {
    // A keep-alive connection re-arms its timer at each step of a request, often to the
    // deadline it already has: left where it is, the node fires as if never moved.
    if (node->deadline_ms == deadline_ms) return;
    unlink(node);
    --size_;
  }
  node->deadline_ms = deadline_ms;
  insert(node);
}

void TimerWheel::cancel(TimerNode* node) {
  if (!node->linked()) return;
  unlink(node);
  --size_;
}

void TimerWheel::insert(TimerNode* node) {
  uint64_t tick = node->deadline_ms / tick_ms_;
  if (tick < current_tick_) tick = current_tick_;
  const size_t slot = tick & mask_;
  link_after(&slots_[slot], node);
  mark_occupied(slot);
  bound_ms_ = size_ == 0 ? node->deadline_ms : std::min(bound_ms_, node->deadline_ms);
  ++size_;
}

int64_t TimerWheel::ms_until_next(uint64_t now_ms) const {
  if (size_ == 0) return -1;
  // No node was due before bound_ms_ when it was set, and none scheduled since is (insert
  // lowers it). A node cancelled or moved later leaves it early: the loop may then wake
  // once for nothing, and the scan below sets the bound from what is left.
  if (bound_ms_ > now_ms) return static_cast<int64_t>(bound_ms_ - now_ms);
  const int64_t wait = scan_until_next(now_ms);
  bound_ms_ = now_ms + static_cast<uint64_t>(wait);
  return wait;
}

int64_t TimerWheel::scan_until_next(uint64_t now_ms) const {
  if (size_ == 0) return -1;
  const uint64_t slot_count = uint64_t{mask_} + 1;
  // The current slot can hold due nodes, nodes later in this tick, and far ones: look
  // at each of them. Every other slot at distance d holds nothing due before the start
  // of tick current_tick_ + d.
  int64_t best = -1;
  const TimerNode* current = &slots_[current_tick_ & mask_];
  for (const TimerNode* n = current->next; n != current; n = n->next) {
    int64_t wait = n->deadline_ms <= now_ms ? 0 : static_cast<int64_t>(n->deadline_ms - now_ms);
    if (best < 0 || wait < best) best = wait;
    if (best == 0) return 0;
  }
  for (uint64_t d = 1; d < slot_count;) {
    const uint64_t tick = current_tick_ + d;
    const size_t slot = tick & mask_;
    const uint64_t word = occupied_[slot / 64] >> (slot % 64);
    if (word == 0) {
      d += 64 - slot % 64;  // skip the rest of this word
      continue;
    }
    if (const int skip = std::countr_zero(word); skip != 0) {
      d += static_cast<uint64_t>(skip);  // to the next slot that may hold nodes
      continue;
    }
    if (list_empty(&slots_[slot])) {
      occupied_[slot / 64] &= ~(uint64_t{1} << (slot % 64));
      ++d;
      continue;
    }
    const uint64_t start_ms = tick * tick_ms_;
    const int64_t wait = start_ms <= now_ms ? 0 : static_cast<int64_t>(start_ms - now_ms);
    return best < 0 || wait < best ? wait : best;
  }
  // Only the current slot holds nodes.
  return best;
}

uint64_t monotonic_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

}  // namespace ringside
