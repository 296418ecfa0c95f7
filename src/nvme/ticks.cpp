#include "nvme/ticks.hpp"

#include <thread>

namespace aisio::nvme {

uint64_t ticks_per_second() {
#if defined(__x86_64__)
  static const uint64_t hz = [] {
    using clk = std::chrono::steady_clock;
    auto t0 = clk::now();
    uint64_t c0 = ticks();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto t1 = clk::now();
    uint64_t c1 = ticks();
    double secs = std::chrono::duration<double>(t1 - t0).count();
    return uint64_t(double(c1 - c0) / secs);
  }();
  return hz;
#else
  return 1000000000ull;
#endif
}

}  // namespace aisio::nvme
