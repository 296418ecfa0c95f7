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

void HybridPoll::progress(uint32_t n) {
  if (!waiting_) return;
  waiting_ = false;
  auto ns = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - wait_start_).count()) /
            std::max<uint32_t>(n, 1);
  // EWMA with weight 1/8: follows a change of device speed within a few dozen waits
  // without chasing single outliers (a preempted device thread).
  est_ns_ = est_ns_ == 0 ? ns : est_ns_ - est_ns_ / 8 + ns / 8;
}

bool HybridPoll::idle(uint32_t batch) {
  const auto now = Clock::now();
  if (!waiting_) {
    waiting_ = true;
    wait_start_ = now;
  }
  const uint64_t waited = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(now - wait_start_).count());
  const uint64_t end = est_ns_ * std::max<uint32_t>(batch, 1);
  uint64_t ns;
  if (est_ns_ == 0) {
    // No wait has ended yet: spin through a short one, back off from a long one (the
    // first read of a cold image file took milliseconds: 400 k empty polls per run).
    if (waited < kFirstSpinNs) return false;
    ns = std::clamp<uint64_t>(waited / 4, kMinStepNs, kMaxSleepNs);
  } else if (waited < end) {
    // Half the time left, down to kMinStepNs close to the end: a short sleep rather
    // than a spin, which meant a clock read per empty poll (hundreds of thousands
    // per GB in `aisio demo`).
    ns = std::clamp<uint64_t>((end - waited) / 2, kMinStepNs, kMaxSleepNs);
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
