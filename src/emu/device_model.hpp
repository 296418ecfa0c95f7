// Performance model of the whole device: command and byte rate limits (token buckets
// holding 1 ms worth of tokens, so a short stall of the host or of a worker is made up
// for instead of lowering the rate) plus a fixed latency. It only computes when a
// completion is due; the worker holds the CQE until then. The buckets are shared by
// all workers (one CAS per bucket per command, and only while a limit is configured),
// so the caps hold however the I/O is spread over queues and workers.
#pragma once
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "emu/config.hpp"

namespace aisio::emu {

inline uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

class Pacer {
 public:
  explicit Pacer(const DeviceModel& m)
      : enabled_(m.enabled()), latency_ns_(m.latency_us * 1000ull), base_ns_(monotonic_ns()) {
    if (m.iops > 0) ns_per_cmd_ = 1e9 / m.iops;
    if (m.bandwidth > 0) ns_per_byte_ = 1e9 / m.bandwidth;
  }
  Pacer(const Pacer&) = delete;
  Pacer& operator=(const Pacer&) = delete;
  bool enabled() const { return enabled_; }

  // When the completion of a command moving `bytes`, fetched at now_ns, is due. Each
  // worker's successive results never decrease, so its held completions form a FIFO.
  uint64_t due(uint64_t now_ns, uint64_t bytes) {
    double now = double(int64_t(now_ns - base_ns_));  // small values keep double exact
    double floor = now - BURST_NS;                     // unused tokens expire after 1 ms
    double served = now;
    if (ns_per_cmd_ > 0) served = std::max(served, take(cmd_free_, floor, ns_per_cmd_));
    if (ns_per_byte_ > 0 && bytes) served = std::max(served, take(byte_free_, floor, ns_per_byte_ * double(bytes)));
    return base_ns_ + uint64_t(std::max(served, 0.0)) + latency_ns_;
  }

 private:
  static constexpr double BURST_NS = 1e6;
  // Advance a bucket's "next token" time by `cost`; returns when this command's tokens
  // were available.
  static double take(std::atomic<double>& next, double floor, double cost) {
    double cur = next.load(std::memory_order_relaxed), want;
    do want = std::max(cur, floor) + cost;
    while (!next.compare_exchange_weak(cur, want, std::memory_order_relaxed));
    return want;
  }

  bool enabled_;
  uint64_t latency_ns_;
  uint64_t base_ns_;
  double ns_per_cmd_ = 0, ns_per_byte_ = 0;
  alignas(64) std::atomic<double> cmd_free_{0};
  alignas(64) std::atomic<double> byte_free_{0};
};

}  // namespace aisio::emu
