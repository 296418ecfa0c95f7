#include "io/hybrid_poll.hpp"

#include <sys/prctl.h>
#include <time.h>

#include <algorithm>

namespace aisio::io {

namespace {
// The default 50 us timer slack would stretch every short sleep past the wait it is
// meant to cover; 1 us lets the sleep end close to when it was asked to. Per thread,
// set once by the first sleep of the thread.
void tighten_timer_slack() {
  thread_local bool done = false;
  if (done) return;
  done = true;
  ::prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
}
}  // namespace

void HybridPoll::progress() {
  if (!waiting_) return;
  waiting_ = false;
  auto ns = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - wait_start_).count());
  // EWMA with weight 1/8: follows a change of device speed within a few dozen waits
  // without chasing single outliers (a preempted device thread).
  est_ns_ = est_ns_ == 0 ? ns : est_ns_ - est_ns_ / 8 + ns / 8;
}

bool HybridPoll::idle() {
  const auto now = Clock::now();
  if (!waiting_) {
    waiting_ = true;
    wait_start_ = now;
  }
  if (est_ns_ == 0) return false;
  const uint64_t waited = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(now - wait_start_).count());
  uint64_t ns;
  if (waited < est_ns_) {
    const uint64_t left = est_ns_ - waited;
    if (left < 2 * uint64_t(kMinStepNs)) return false;  // about to end: spin
    ns = std::clamp<uint64_t>(left / 2, kMinSleepNs, kMaxSleepNs);
  } else {
    ns = std::clamp<uint64_t>(waited / 4, kMinStepNs, kMaxSleepNs);  // overdue: back off
  }
  tighten_timer_slack();
  timespec ts{0, long(ns)};
  ::clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr);
  ++sleeps_;
  return true;
}

}  // namespace aisio::io
