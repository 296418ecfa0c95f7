#include "trace.hpp"

#include <pthread.h>
#include <time.h>

#include <atomic>
#include <mutex>

namespace aisio::py {

namespace {
std::atomic<bool> g_on{false};
std::mutex g_mu;
std::vector<IoInterval> g_log;

double now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}
}  // namespace

void io_trace_enable(bool on) { g_on.store(on, std::memory_order_relaxed); }

std::vector<IoInterval> io_trace_take() {
  std::lock_guard lk(g_mu);
  std::vector<IoInterval> v;
  v.swap(g_log);
  return v;
}

IoTrace::IoTrace() {
  if (g_on.load(std::memory_order_relaxed)) start_ = now();
}

IoTrace::~IoTrace() {
  if (start_ < 0) return;
  const double end = now();
  std::lock_guard lk(g_mu);
  g_log.push_back({uint64_t(pthread_self()), start_, end});
}

}  // namespace aisio::py
