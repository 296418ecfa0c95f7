#include "perf/worker.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <thread>

#include "nvme/ticks.hpp"

#if AISIO_HAVE_CALLGRIND
#include <valgrind/callgrind.h>
#endif

namespace aisio::perf {

double ns_per_tick() {
#if defined(__x86_64__)
  static const double v = 1e9 / double(nvme::ticks_per_second());
#else
  static const double v = 1.0;  // steady_clock counts nanoseconds on Linux
#endif
  return v;
}

namespace {
void thread_cpu(double& usr, double& sys, uint64_t& ctx) {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  usr = double(ru.ru_utime.tv_sec) + double(ru.ru_utime.tv_usec) / 1e6;
  sys = double(ru.ru_stime.tv_sec) + double(ru.ru_stime.tv_usec) / 1e6;
  ctx = uint64_t(ru.ru_nvcsw + ru.ru_nivcsw);
}
}  // namespace

void ThreadCtx::init(const PerfOptions& opts, uint32_t idx, int core, Control& c, Progress& p, ThreadResult& r) {
  o = &opts;
  index = idx;
  cpu = core;
  ctl = &c;
  prog = &p;
  out = &r;
  out->index = idx;
  out->cpu = core;
  sample_every = opts.lat ? opts.lat_sample : UINT32_MAX;
  countdown = 1;  // the first I/O is sampled
  ns_per_tick = perf::ns_per_tick();
  read_thresh = Lcg::threshold(read_percent(opts.rw, opts.rwmix));
  mix = Lcg(opts.seed * 31 + idx + 0xA5A5);
  remaining = opts.ios ? int64_t(std::min<uint64_t>(opts.ios, INT64_MAX)) : INT64_MAX;
}

void ThreadCtx::begin() {
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);  // best effort
  }
  ctl->ready.fetch_add(1, std::memory_order_acq_rel);
  while (!ctl->go.load(std::memory_order_acquire)) std::this_thread::yield();
  phase = ctl->phase.load(std::memory_order_acquire);
  if (phase == kMeasure) start_measure();
  else t_start = std::chrono::steady_clock::now();
}

void ThreadCtx::start_measure() {
  carried += done[0] + done[1];
  done[0] = done[1] = 0;
  loops = idle_loops = 0;
  lat[0].clear();
  lat[1].clear();
  thread_cpu(usr0, sys0, ctx0);
  t_start = std::chrono::steady_clock::now();
#if AISIO_HAVE_CALLGRIND
  if (o->callgrind && index == 0) {  // the window covers the loop only, not the clock reads
    CALLGRIND_START_INSTRUMENTATION;
    CALLGRIND_ZERO_STATS;
    CALLGRIND_TOGGLE_COLLECT;
  }
#endif
}

void ThreadCtx::finish() {
  if (measured) return;
  measured = true;
#if AISIO_HAVE_CALLGRIND
  if (o->callgrind && index == 0) {
    CALLGRIND_TOGGLE_COLLECT;
    CALLGRIND_STOP_INSTRUMENTATION;
  }
#endif
  auto t_end = std::chrono::steady_clock::now();
  double usr1, sys1;
  uint64_t ctx1;
  thread_cpu(usr1, sys1, ctx1);
  out->seconds = std::chrono::duration<double>(t_end - t_start).count();
  out->usr_s = usr1 - usr0;
  out->sys_s = sys1 - sys0;
  out->ctx_switches = ctx1 - ctx0;
  out->loops = loops;
  out->idle_loops = idle_loops;
  const uint32_t bs = o->bs;
  for (int d = 0; d < 2; ++d) {
    out->dir[d].ios = done[d];
    out->dir[d].bytes = done[d] * bs;
    out->dir[d].lat = lat[d];
  }
}

void ThreadCtx::change_phase(int ph) {
  if (phase == kRamp && ph >= kMeasure) start_measure();
  if (ph == kStop) {
    finish();
    remaining = 0;
  }
  phase = ph;
}

void ThreadCtx::end() {
  if (!measured) {
    if (phase == kRamp) start_measure();
    finish();
  }
  prog->ios.store(carried + done[0] + done[1], std::memory_order_relaxed);
  prog->finished.store(true, std::memory_order_release);
}

void ThreadCtx::fail(const std::string& what) {
  if (out->errors++ == 0) out->first_error = what;
  remaining = 0;
  ctl->failed.store(true, std::memory_order_relaxed);
}

}  // namespace aisio::perf
