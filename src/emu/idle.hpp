// The spin-then-sleep wait of device threads (see IdlePolicy in config.hpp).
#pragma once
#include <sys/prctl.h>
#include <time.h>

#include <algorithm>
#include <cstdint>

#include "emu/config.hpp"
#include "emu/device_model.hpp"

namespace aisio::emu {

class IdleBackoff {
 public:
  // Call at the start of a device thread: timer slack down from the default 50 us, so
  // the short sleeps below end close to when they should.
  static void init_thread() { prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); }

  explicit IdleBackoff(const IdlePolicy& p) : p_(p), sleep_us_(p.sleep_min_us) {}

  // Call once per polling pass. `busy`: the pass did work. `deadline_ns`: a held
  // completion falls due then (0: none), so never sleep past it.
  void pass(bool busy, uint64_t now_ns, uint64_t deadline_ns = 0) {
    if (busy) {
      last_work_ns_ = now_ns;
      sleep_us_ = p_.sleep_min_us;
      return;
    }
    if (now_ns - last_work_ns_ < uint64_t(p_.spin_us) * 1000) {
      cpu_relax();
      return;
    }
    uint64_t us = sleep_us_;
    if (deadline_ns) {
      // A held completion due within 100 us: spin, a sleep that short is not reliable.
      if (deadline_ns <= now_ns + 100000) {
        cpu_relax();
        return;
      }
      us = std::min<uint64_t>(us, (deadline_ns - now_ns - 100000) / 1000);
    }
    timespec ts{time_t(us / 1000000), long(us % 1000000) * 1000};
    nanosleep(&ts, nullptr);
    sleep_us_ = std::min(sleep_us_ * 2, p_.sleep_max_us);
  }

 private:
  IdlePolicy p_;
  uint64_t last_work_ns_ = 0;
  uint32_t sleep_us_;

  static void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
};

}  // namespace aisio::emu
