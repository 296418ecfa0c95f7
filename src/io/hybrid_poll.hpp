// Hybrid polling for a thread that polls its own queue pair (internal to src/io): the
// kernel's hybrid io_poll, adapted to a ring of chunks in flight. The quantity
// estimated is the wait: from a poll that finds nothing to the poll that reaps a
// completion (with qd chunks in flight, about one command's service time, not its
// whole queueing latency); a wait that reaps n completions counts as n waits of 1/n
// its length. Each empty poll of a wait sleeps half the time left to the
// estimated end of the wait (so the sleeps halve towards it and a wait that ends
// during one costs at most that sleep's overshoot), at least kMinStepNs; once the
// wait has outlasted the estimate (a device that stalls: the software controller
// reading a cold image file, a preempted device thread) it sleeps a quarter of the
// time waited so far, so a long wait costs a few sleeps and not a spinning core, and
// ends at most ~25 % late. (The kernel's hybrid io_poll sleeps
// once and spins the rest: in `aisio demo` that spin was most of the reading thread's
// CPU, millions of empty polls per GB.)
#pragma once
#include <chrono>
#include <cstdint>

namespace aisio::io {

class HybridPoll {
 public:
  static constexpr uint32_t kMaxSleepNs = 200'000;
  // Sleeps shorter than this cost about as much CPU (system call, two context
  // switches) as spinning through them.
  static constexpr uint32_t kMinStepNs = 4'000;
  // Before the first estimate: how long a wait is spun before it backs off as overdue.
  static constexpr uint32_t kFirstSpinNs = 20'000;

  // A poll reaped `n` completions: ends the current wait and feeds its length per
  // completion to the estimate.
  void progress(uint32_t n = 1);
  // A poll found nothing. Sleeps as described above and returns true, or returns false
  // (spin) in the first kFirstSpinNs of a wait before any wait has ended. The caller
  // polls again right after, so commands are polled at least once per sleep and their
  // timeouts still fire.
  // batch: how many completions the wait may cover (a reader with many commands in
  // flight needs not wake for each; the estimated end is batch estimates away).
  bool idle(uint32_t batch = 1);

  uint64_t sleeps() const { return sleeps_; }
  uint64_t estimate_ns() const { return est_ns_; }

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point wait_start_;
  bool waiting_ = false;
  uint64_t est_ns_ = 0;  // EWMA of waits, 0 until the first one ends
  uint64_t sleeps_ = 0;
};

}  // namespace aisio::io
