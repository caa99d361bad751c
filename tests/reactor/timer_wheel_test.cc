#include "ringside/timer_wheel.h"

#include <gtest/gtest.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <thread>
#include <vector>

namespace ringside {
namespace {

struct Timer {
  TimerNode node;
  int id = 0;
};

Timer* owner(TimerNode* node) { return reinterpret_cast<Timer*>(node); }

// Advances and returns the ids that fired, in firing order.
std::vector<int> advance_ids(TimerWheel& wheel, uint64_t now) {
  std::vector<int> fired;
  wheel.advance(now, [&](TimerNode* n) {
    EXPECT_FALSE(n->linked());
    EXPECT_LE(n->deadline_ms, now);
    fired.push_back(owner(n)->id);
  });
  return fired;
}

TEST(TimerWheelTest, FiresAtDeadlineNotBefore) {
  TimerWheel wheel(1000);
  Timer t{{}, 1};
  wheel.schedule(&t.node, 1105);
  EXPECT_TRUE(t.node.linked());
  EXPECT_EQ(wheel.size(), 1u);
  EXPECT_TRUE(advance_ids(wheel, 1100).empty());
  EXPECT_TRUE(advance_ids(wheel, 1104).empty());
  EXPECT_EQ(advance_ids(wheel, 1105), std::vector<int>{1});
  EXPECT_FALSE(t.node.linked());
  EXPECT_EQ(wheel.size(), 0u);
  EXPECT_TRUE(advance_ids(wheel, 5000).empty());
}

TEST(TimerWheelTest, CancelAndCancelOfUnlinkedNode) {
  TimerWheel wheel(0);
  Timer a{{}, 1}, b{{}, 2};
  wheel.cancel(&a.node);  // not linked: no-op
  wheel.schedule(&a.node, 50);
  wheel.schedule(&b.node, 50);
  wheel.cancel(&a.node);
  EXPECT_FALSE(a.node.linked());
  EXPECT_EQ(wheel.size(), 1u);
  wheel.cancel(&a.node);
  EXPECT_EQ(wheel.size(), 1u);
  EXPECT_EQ(advance_ids(wheel, 60), std::vector<int>{2});
}

TEST(TimerWheelTest, RescheduleMovesDeadlineBothWays) {
  TimerWheel wheel(0);
  Timer t{{}, 7};
  wheel.schedule(&t.node, 100);
  wheel.schedule(&t.node, 500);  // later
  EXPECT_EQ(wheel.size(), 1u);
  EXPECT_TRUE(advance_ids(wheel, 200).empty());
  wheel.schedule(&t.node, 300);  // earlier again
  EXPECT_TRUE(advance_ids(wheel, 299).empty());
  EXPECT_EQ(advance_ids(wheel, 300), std::vector<int>{7});
}

TEST(TimerWheelTest, RescheduleToTheSameDeadlineKeepsOneNodeOnTime) {
  const uint64_t start = 50'000;
  TimerWheel wheel(start);
  Timer near{{}, 1}, far{{}, 2}, past{{}, 3};
  wheel.schedule(&near.node, start + 25);
  wheel.schedule(&far.node, start + 30'000);  // three revolutions on
  wheel.schedule(&past.node, start - 10);
  wheel.schedule(&near.node, start + 25);
  wheel.schedule(&far.node, start + 30'000);
  wheel.schedule(&past.node, start - 10);
  EXPECT_EQ(wheel.size(), 3u);
  EXPECT_EQ(wheel.ms_until_next(start), 0);
  EXPECT_EQ(advance_ids(wheel, start), std::vector<int>{3});
  EXPECT_GT(wheel.ms_until_next(start), 0);  // up to a tick early (its slot's start)
  EXPECT_LE(wheel.ms_until_next(start), 25);
  EXPECT_TRUE(advance_ids(wheel, start + 24).empty());
  EXPECT_EQ(advance_ids(wheel, start + 25), std::vector<int>{1});
  // The far node has been revisited (and relinked by advance) once per revolution.
  for (uint64_t now = start + 25; now < start + 30'000; now += 997) {
    EXPECT_TRUE(advance_ids(wheel, now).empty());
    wheel.schedule(&far.node, start + 30'000);
    EXPECT_EQ(wheel.size(), 1u);
    const int64_t wait = wheel.ms_until_next(now);
    EXPECT_GE(wait, 0);
    EXPECT_LE(static_cast<uint64_t>(wait), start + 30'000 - now);
  }
  EXPECT_TRUE(advance_ids(wheel, start + 29'999).empty());
  EXPECT_EQ(advance_ids(wheel, start + 30'000), std::vector<int>{2});
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheelTest, RescheduleToTheSameDeadlineLeavesTheNodeInPlace) {
  TimerWheel wheel(0);
  Timer a{{}, 1}, b{{}, 2};
  wheel.schedule(&a.node, 100);
  wheel.schedule(&b.node, 100);
  const TimerNode* next = a.node.next;
  wheel.schedule(&a.node, 100);  // not unlinked and appended after b
  EXPECT_EQ(a.node.next, next);
  EXPECT_EQ(advance_ids(wheel, 100), (std::vector<int>{1, 2}));
}

TEST(TimerWheelTest, PastDeadlineFiresOnNextAdvance) {
  TimerWheel wheel(10'000);
  Timer t{{}, 3};
  wheel.schedule(&t.node, 5);
  EXPECT_EQ(wheel.ms_until_next(10'000), 0);
  EXPECT_EQ(advance_ids(wheel, 10'000), std::vector<int>{3});
}

TEST(TimerWheelTest, DeadlinesBeyondOneRevolution) {
  // 1024 slots x 10 ms = 10.24 s per revolution; an idle timeout of 1 h spans ~350.
  const uint64_t start = 123'456;
  TimerWheel wheel(start);
  Timer hour{{}, 1}, near{{}, 2};
  wheel.schedule(&hour.node, start + 3'600'000);
  wheel.schedule(&near.node, start + 10'240 + 5);  // same slot as a tick one revolution on
  std::vector<int> fired;
  uint64_t fired_hour_at = 0;
  for (uint64_t now = start; now <= start + 3'700'000; now += 7) {
    wheel.advance(now, [&](TimerNode* n) {
      fired.push_back(owner(n)->id);
      if (owner(n)->id == 1) fired_hour_at = now;
      EXPECT_GE(now, n->deadline_ms);
    });
  }
  EXPECT_EQ(fired, (std::vector<int>{2, 1}));
  EXPECT_GE(fired_hour_at, start + 3'600'000);
  EXPECT_LT(fired_hour_at, start + 3'600'000 + 7);
}

TEST(TimerWheelTest, LargeJumpFiresEverythingDue) {
  TimerWheel wheel(0);
  std::vector<Timer> timers(50);
  for (int i = 0; i < 50; ++i) {
    timers[i].id = i;
    wheel.schedule(&timers[i].node, static_cast<uint64_t>(i) * 1000);  // 0 .. 49 s
  }
  auto fired = advance_ids(wheel, 30'500);  // ~3 revolutions in one step
  std::sort(fired.begin(), fired.end());
  ASSERT_EQ(fired.size(), 31u);
  for (int i = 0; i <= 30; ++i) EXPECT_EQ(fired[i], i);
  EXPECT_EQ(wheel.size(), 19u);
}

TEST(TimerWheelTest, CallbackMayRescheduleItselfAndCancelOthers) {
  TimerWheel wheel(0);
  Timer periodic{{}, 1}, victim{{}, 2}, spawned{{}, 3};
  wheel.schedule(&periodic.node, 100);
  wheel.schedule(&victim.node, 100);  // same slot, due at the same time
  int periodic_runs = 0;
  std::vector<int> fired;
  auto on_fire = [&](TimerNode* n) {
    fired.push_back(owner(n)->id);
    if (n == &periodic.node) {
      ++periodic_runs;
      wheel.schedule(&periodic.node, n->deadline_ms + 100);  // re-arm itself
      wheel.cancel(&victim.node);                            // cancels a due node
      wheel.schedule(&spawned.node, 0);                      // already due
    }
  };
  wheel.advance(100, on_fire);
  // The victim never fires; the spawned past-due node fires at the latest on the next
  // advance; the periodic node is not re-run in the same advance.
  wheel.advance(100, on_fire);
  EXPECT_EQ(periodic_runs, 1);
  EXPECT_EQ(fired, (std::vector<int>{1, 3}));
  EXPECT_TRUE(periodic.node.linked());
  EXPECT_FALSE(victim.node.linked());
  wheel.advance(200, on_fire);
  EXPECT_EQ(periodic_runs, 2);
}

TEST(TimerWheelTest, MsUntilNextIsNeverLaterThanEarliestDeadline) {
  TimerWheel wheel(1000);
  EXPECT_EQ(wheel.ms_until_next(1000), -1);
  Timer a{{}, 1}, b{{}, 2};
  wheel.schedule(&a.node, 1250);
  int64_t wait = wheel.ms_until_next(1000);
  EXPECT_GT(wait, 0);
  EXPECT_LE(wait, 250);
  EXPECT_GE(wait, 250 - 10);  // coarse by at most a tick
  // Within the current tick the answer is exact, so the loop never spins.
  wheel.schedule(&b.node, 1007);
  EXPECT_EQ(wheel.ms_until_next(1000), 7);
  wheel.cancel(&b.node);
  // A far deadline gives a positive lower bound.
  wheel.cancel(&a.node);
  wheel.schedule(&a.node, 1000 + 3'600'000);
  wait = wheel.ms_until_next(1000);
  EXPECT_GT(wait, 0);
  EXPECT_LE(wait, 3'600'000);
  wheel.cancel(&a.node);
  EXPECT_EQ(wheel.ms_until_next(1000), -1);
}

// The scan for the next occupied slot jumps over whole words and over runs of empty
// slots inside a word; it must land on exactly the right slot wherever the wheel's
// position and the node fall relative to word boundaries and the wrap.
TEST(TimerWheelTest, MsUntilNextFindsTheNextOccupiedSlotAtAnyDistance) {
  for (const uint64_t start : {uint64_t{0}, uint64_t{630}, uint64_t{10'230}, uint64_t{7'770}}) {
    TimerWheel wheel(start, 10, 1024);
    Timer stale{{}, 0}, t{{}, 1};
    for (uint64_t d = 1; d < 1024; ++d) {
      // A cancelled node leaves its slot's bit set until a scan finds the slot empty.
      wheel.schedule(&stale.node, start + (d / 2) * 10 + 1);
      wheel.cancel(&stale.node);
      wheel.schedule(&t.node, start + d * 10 + 3);
      ASSERT_EQ(wheel.scan_until_next(start), static_cast<int64_t>(d * 10))
          << "start " << start << " distance " << d;
      wheel.cancel(&t.node);
    }
    EXPECT_EQ(wheel.scan_until_next(start), -1);
    EXPECT_EQ(wheel.ms_until_next(start), -1);
  }
}

// ms_until_next() keeps the last scan's answer as a bound, lowered by each insert. A
// keep-alive connection moves its idle timer on every request: when that timer was the
// earliest, the bound is early (the loop may wake once for nothing), never late, and the
// call after it scans.
TEST(TimerWheelTest, MsUntilNextAfterTheEarliestNodeMovesLater) {
  TimerWheel wheel(1000);
  Timer idle{{}, 1}, other{{}, 2};
  wheel.schedule(&other.node, 6000);
  wheel.schedule(&idle.node, 1100);
  EXPECT_EQ(wheel.ms_until_next(1000), 100);
  wheel.schedule(&idle.node, 9050);
  EXPECT_EQ(wheel.ms_until_next(1050), 50);
  EXPECT_TRUE(advance_ids(wheel, 1100).empty());
  EXPECT_EQ(wheel.ms_until_next(1100), 4900);  // other's tick, from a scan
  EXPECT_EQ(wheel.ms_until_next(1200), 4800);  // from the bound
  // An earlier node lowers the bound at once.
  Timer soon{{}, 3};
  wheel.schedule(&soon.node, 1203);
  EXPECT_EQ(wheel.ms_until_next(1200), 3);
  wheel.cancel(&soon.node);
  wheel.cancel(&other.node);
  wheel.cancel(&idle.node);
  EXPECT_EQ(wheel.ms_until_next(1200), -1);
}

TEST(TimerWheelTest, NodesMayDieBeforeTheWheel) {
  // The usual destruction order in a worker: connections (and their nodes) first. The
  // wheel's destructor must not walk them (ASan reports it if it does).
  TimerWheel wheel(0);
  {
    auto timers = std::make_unique<Timer[]>(3);
    for (int i = 0; i < 3; ++i) wheel.schedule(&timers[i].node, 100);
  }
  EXPECT_EQ(wheel.size(), 3u);
}

// Random schedule/cancel/advance against a plain map as the reference model: each
// advance must fire exactly the nodes whose deadline has passed.
TEST(TimerWheelTest, MatchesReferenceModel) {
  std::mt19937_64 rng(42);
  const uint64_t start = 5'000;
  TimerWheel wheel(start, 10, 64);  // small wheel: many far deadlines
  std::vector<Timer> timers(200);
  for (int i = 0; i < 200; ++i) timers[i].id = i;
  std::map<int, uint64_t> model;  // id -> deadline
  uint64_t now = start;
  for (int step = 0; step < 20'000; ++step) {
    int op = static_cast<int>(rng() % 10);
    int id = static_cast<int>(rng() % timers.size());
    if (op < 5) {
      uint64_t deadline = now + rng() % 3000;
      if (rng() % 20 == 0) deadline = now > 50 ? now - 50 : 0;
      // As a keep-alive connection does: re-armed to the deadline it already has.
      if (auto it = model.find(id); it != model.end() && rng() % 4 == 0) deadline = it->second;
      wheel.schedule(&timers[id].node, deadline);
      model[id] = deadline;
    } else if (op < 7) {
      wheel.cancel(&timers[id].node);
      model.erase(id);
    } else {
      now += rng() % 40;
      std::vector<int> expected;
      for (auto& [tid, deadline] : model) {
        if (deadline <= now) expected.push_back(tid);
      }
      auto fired = advance_ids(wheel, now);
      std::sort(fired.begin(), fired.end());
      ASSERT_EQ(fired, expected) << "step " << step;
      for (int tid : fired) model.erase(tid);
      int64_t wait = wheel.ms_until_next(now);
      if (model.empty()) {
        ASSERT_EQ(wait, -1);
      } else {
        uint64_t earliest = UINT64_MAX;
        for (auto& [tid, deadline] : model) earliest = std::min(earliest, deadline);
        ASSERT_GE(wait, 0);
        ASSERT_LE(static_cast<uint64_t>(wait), earliest - now);
      }
    }
    ASSERT_EQ(wheel.size(), model.size());
  }
}

// Milliseconds of CLOCK_MONOTONIC, read with CLOCK_MONOTONIC_COARSE: it lags the precise
// clock by at most the coarse clock's resolution.
uint64_t precise_monotonic_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

TEST(TimerWheelTest, MonotonicMsIsTheMonotonicClockInMilliseconds) {
  timespec resolution;
  ASSERT_EQ(clock_getres(CLOCK_MONOTONIC_COARSE, &resolution), 0);
  // The coarse clock is updated on the kernel's tick; on a virtual machine a tick can come
  // late, so it may lag the precise clock by a few ticks (seen: 6-7 ms with a 4 ms
  // resolution). Another clock or unit would be off by far more than this bound.
  const uint64_t lag_ms = 4 * (static_cast<uint64_t>(resolution.tv_nsec) / 1000000) + 10;
  for (int sleep_ms : {0, 30}) {
    std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    const uint64_t before = precise_monotonic_ms();
    const uint64_t got = monotonic_ms();
    const uint64_t after = precise_monotonic_ms();
    // Neither the wall clock nor another unit: within the coarse lag of the clock that
    // timers and deadlines (worker loops, the timer wheel) are meant to run on.
    EXPECT_LE(got, after);
    EXPECT_GE(got + lag_ms, before) << "lag allowed: " << lag_ms << " ms";
  }
  // It follows real time: a 30 ms sleep moves it by at least 30 ms less the lag.
  const uint64_t start = monotonic_ms();
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_GE(monotonic_ms() + lag_ms, start + 30);
}

}  // namespace
}  // namespace ringside
