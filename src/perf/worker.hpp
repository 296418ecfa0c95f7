// Internal to src/perf: what every engine's thread shares with the runner.
//
// The runner creates one Worker per thread (queues and buffers allocated up front),
// starts the threads, and moves them through the phases ramp -> measure -> stop by
// storing Control::phase. A worker's loop reads the phase once per loop iteration (a
// relaxed load) and never per I/O; per-I/O work touches only ThreadCtx's hot fields.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "nvme/ticks.hpp"
#include "perf/lba.hpp"
#include "perf/options.hpp"
#include "perf/result.hpp"

namespace aisio::perf {

inline uint64_t rdtsc() { return nvme::ticks(); }  // the driver's clock: the TSC on x86-64
double ns_per_tick();  // calibrated once per process

enum Phase : int { kRamp = 0, kMeasure = 1, kStop = 2 };

struct Control {
  std::atomic<int> phase{kRamp};
  std::atomic<bool> go{false};
  std::atomic<uint32_t> ready{0};
  std::atomic<bool> failed{false};
};

struct alignas(64) Progress {
  std::atomic<uint64_t> ios{0};  // completions so far, ramp included
  std::atomic<bool> finished{false};
};

struct ThreadCtx {
  // ---- hot: touched per I/O ----
  uint64_t done[2] = {0, 0};       // completions per direction in the current phase
  // I/Os still to issue; <= 0: stop issuing (stop, error, --ios). Signed, so that the
  // per-I/O test is one decrement and its sign (it never wraps back to positive).
  int64_t remaining = INT64_MAX;
  uint32_t countdown = 1;          // I/Os until the next latency sample
  uint32_t sample_every = 64;
  double ns_per_tick = 1;
  uint64_t read_thresh = 0;        // mixed workloads: Lcg::threshold(read %)
  Lcg mix{1};
  uint64_t loops = 0;              // polling passes over the thread's devices (per loop, not per I/O)
  uint64_t idle_loops = 0;         // passes that reaped nothing
  LatencyHistogram lat[2];

  // ---- cold ----
  const PerfOptions* o = nullptr;
  uint32_t index = 0;
  int cpu = -1;
  Control* ctl = nullptr;
  Progress* prog = nullptr;
  ThreadResult* out = nullptr;
  int phase = kRamp;
  bool measured = false;  // finish() ran
  uint32_t iter = 0;
  uint64_t carried = 0;   // completions of earlier phases, for the progress line
  std::chrono::steady_clock::time_point t_start;
  double usr0 = 0, sys0 = 0;
  uint64_t ctx0 = 0;

  void init(const PerfOptions& opts, uint32_t idx, int core, Control& c, Progress& p, ThreadResult& r);
  // In the worker thread: pin, announce readiness, wait for the start signal, then
  // start the first phase.
  void begin();
  // Once per loop iteration: follows the phase, publishes progress. After it, the loop
  // ends when remaining <= 0 and nothing is in flight.
  [[gnu::always_inline]] void tick() {
    int ph = ctl->phase.load(std::memory_order_relaxed);
    if (ph != phase) [[unlikely]] change_phase(ph);
    ++loops;
    if ((++iter & 127) == 0) [[unlikely]] prog->ios.store(carried + done[0] + done[1], std::memory_order_relaxed);
  }
  // After the loop: ends the measurement if the stop did not (--ios, errors).
  void end();

  // Slow path of a failed I/O: records it and stops this thread's submissions.
  void fail(const std::string& what);

  // Latency sampling: whether this I/O gets a timestamp.
  bool sample() {
    if (--countdown) return false;
    countdown = sample_every;
    return true;
  }
  void record(uint32_t op, uint64_t t0) { lat[op].add(uint64_t(double(rdtsc() - t0) * ns_per_tick)); }
  uint8_t pick_op() { return mix.chance(read_thresh) ? 0 : 1; }

 private:
  void change_phase(int ph);
  void start_measure();
  void finish();
};

// One thread's engine: queues, buffers and the loop. Created on the runner's thread
// (so setup errors surface before any I/O), run on the worker thread.
class Worker {
 public:
  virtual ~Worker() = default;
  virtual void run(ThreadCtx& t) = 0;
};

}  // namespace aisio::perf
