// A cheap monotonic clock for command timeouts: the TSC on x86-64 (one instruction on
// the submission path), steady_clock elsewhere. Calibrated once per process.
#pragma once
#include <chrono>
#include <cstdint>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace aisio::nvme {

inline uint64_t ticks() {
#if defined(__x86_64__)
  return __rdtsc();
#else
  return uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
#endif
}

uint64_t ticks_per_second();

inline uint64_t ticks_from(std::chrono::nanoseconds d) {
  return uint64_t((__int128)d.count() * ticks_per_second() / 1000000000);
}

}  // namespace aisio::nvme
