// For the tests: when enabled, every stretch of I/O done without the GIL records its
// thread and its [start, end) on CLOCK_MONOTONIC (time.monotonic()'s clock), so a test
// can see two threads inside the GIL-free section at once. Off: one relaxed load.
#pragma once
#include <cstdint>
#include <vector>

namespace aisio::py {

struct IoInterval {
  uint64_t thread;
  double start, end;
};

void io_trace_enable(bool on);
std::vector<IoInterval> io_trace_take();

class IoTrace {
 public:
  IoTrace();
  ~IoTrace();
  IoTrace(const IoTrace&) = delete;
  IoTrace& operator=(const IoTrace&) = delete;

 private:
  double start_ = -1;
};

}  // namespace aisio::py
