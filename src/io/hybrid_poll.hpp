// Hybrid polling for a thread that polls its own queue pair (internal to src/io): the
// kernel's hybrid io_poll, adapted to a ring of chunks in flight. The quantity
// estimated is the wait: from a poll that finds nothing to the poll that reaps a
// completion (with qd chunks in flight, about one command's service time, not its
// whole queueing latency). After an empty poll the thread sleeps about half the
// estimated wait once, then spins as before; a wait that ends before the sleep does
// costs at most the sleep's overshoot.
#pragma once
#include <chrono>
#include <cstdint>

namespace aisio::io {

class HybridPoll {
 public:
  static constexpr uint32_t kMinSleepNs = 1'000;
  static constexpr uint32_t kMaxSleepNs = 200'000;

  // A poll reaped something: ends the current wait and feeds its length to the estimate.
  void progress();
  // A poll found nothing. Sleeps (once per wait, when there is an estimate) and returns
  // true; the caller polls again right after, so commands are polled at least once
  // per sleep and their timeouts still fire.
  bool idle();

  uint64_t sleeps() const { return sleeps_; }
  uint64_t estimate_ns() const { return est_ns_; }

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point wait_start_;
  bool waiting_ = false;
  bool slept_ = false;
  uint64_t est_ns_ = 0;  // EWMA of waits, 0 until the first one ends
  uint64_t sleeps_ = 0;
};

}  // namespace aisio::io
