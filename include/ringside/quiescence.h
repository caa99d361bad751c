// Quiescent-state based reclamation, the part shared by every RCU cell in the proxy (TLS
// generations, cluster endpoint sets): how the control side observes the workers, and
// the grace period after which no worker can still be using a pointer that was
// unpublished before it began.
//
// Each worker bumps a counter once per event-loop turn (Worker::quiescent_epoch()) and
// never keeps a pointer loaded from an RCU cell across a turn unless it counted a hold on
// the object. Something unpublished at time T is therefore unreachable to worker i once
// i's counter has moved by two since T (the first turn may have been in flight when the
// counter was read), or once i's loop has ended.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace ringside {

// How a reclaimer observes the workers.
struct WorkerQuiescence {
  unsigned workers = 0;
  // Worker i's quiescent-state counter (acquire load); it only grows, once per turn.
  std::function<uint64_t(unsigned)> epoch;
  // True once worker i's loop has ended for good: it loads nothing any more, so its epoch
  // no longer needs to move (its counts still do, and are still checked). May be empty.
  std::function<bool(unsigned)> stopped;
};

// One grace period. Construct it right after the unpublishing stores; passed() turns
// true (and stays true) once every worker has been through two quiescent points since.
class GracePeriod {
 public:
  explicit GracePeriod(const WorkerQuiescence& workers);
  bool passed(const WorkerQuiescence& workers);

 private:
  std::vector<uint64_t> epochs_;  // each worker's epoch at construction
  bool passed_ = false;
};

}  // namespace ringside
