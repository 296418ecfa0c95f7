#include "perf/runner.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "backends/registry.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"
#include "target/farm.hpp"
#include "perf/engines.hpp"

namespace aisio::perf {

ThreadResult RunResult::total() const {
  ThreadResult t;
  t.index = UINT32_MAX;
  double secs = 0;
  for (auto& r : threads) {
    for (int d = 0; d < 2; ++d) t.dir[d].merge(r.dir[d]);
    t.usr_s += r.usr_s;
    t.sys_s += r.sys_s;
    t.ctx_switches += r.ctx_switches;
    t.loops += r.loops;
    t.idle_loops += r.idle_loops;
    t.errors += r.errors;
    if (t.first_error.empty()) t.first_error = r.first_error;
    secs += r.seconds;
  }
  t.seconds = threads.empty() ? 0 : secs / double(threads.size());
  return t;
}

double RunResult::total_iops() const {
  double s = 0;
  for (auto& r : threads) s += r.iops();
  return s;
}

uint64_t RunResult::errors() const {
  uint64_t e = 0;
  for (auto& r : threads) e += r.errors;
  return e;
}

namespace {

std::vector<int> allowed_cpus() {
  std::vector<int> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) out.push_back(c);
  if (out.empty()) out.push_back(0);
  return out;
}

// The descriptor is kept open in `fds` (the caller's, closed when it goes).
KernelDevice open_kernel_device(const PerfOptions& o, const std::string& path, std::vector<Fd>& fds) {
  bool writes = read_percent(o.rw, o.rwmix) < 100;
  int flags = (writes ? O_RDWR : O_RDONLY) | O_CLOEXEC | (o.direct ? O_DIRECT : 0);
  int fd = ::open(path.c_str(), flags);
  if (fd < 0) {
    int err = errno;
    if (err == EINVAL && o.direct)
      throw Error(Errc::not_supported, fmt::format("open {} with O_DIRECT: {} (this file system has no direct I/O; "
                                                   "try --direct 0)",
                                                   path, std::strerror(err)));
    throw_errno("open " + path, err);
  }
  fds.emplace_back(fd);
  KernelDevice d;
  d.name = path;
  d.fd = fd;
  struct stat st {};
  if (fstat(fd, &st) != 0) throw_errno("stat " + path);
  if (S_ISBLK(st.st_mode)) {
    uint64_t bytes = 0;
    int lbs = 512;
    if (ioctl(fd, BLKGETSIZE64, &bytes) != 0) throw_errno("BLKGETSIZE64 " + path);
    if (ioctl(fd, BLKSSZGET, &lbs) != 0) lbs = 512;
    d.capacity = bytes;
    d.lba_size = uint32_t(lbs);
  } else if (S_ISREG(st.st_mode)) {
    d.capacity = uint64_t(st.st_size);
    d.lba_size = 512;
    if (d.capacity == 0)
      throw Error(Errc::invalid_argument, path + ": empty file (create it first, e.g. fallocate -l 1G " + path + ")");
  } else {
    throw Error(Errc::invalid_argument, path + ": not a block device or regular file");
  }
  return d;
}

}  // namespace

RunResult run(const PerfOptions& opts, const RunHooks& hooks) {
  const backends::Registry cpu_only;
  const backends::Registry& reg = hooks.backends ? *hooks.backends : cpu_only;
  opts.validate(reg);
  RunResult res;
  res.opts = opts;
  PerfOptions& o = res.opts;  // adjusted copy; the workers refer to it
  if (o.ios && o.ramp_s > 0) {
    res.notes.push_back("--ramp is ignored with --ios");
    o.ramp_s = 0;
  }
  if (o.engine == Engine::psync && o.qd != 1) {
    res.notes.push_back(fmt::format("psync is synchronous: --qd {} runs as 1", o.qd));
    o.qd = 1;
  }
  res.record = report::Record::capture(o.command_line);
  o.command_line = res.record.command;

  // ---- devices ----
  std::vector<backends::UnvmeTarget> udevs;
  std::vector<backends::TcpTarget> tdevs;  // tcp:// handles: the tcp backend
  std::vector<KernelDevice> kdevs;
  std::vector<Fd> fds;  // the kernel devices', closed after the workers
  if (o.engine == Engine::unvme) {
    auto add = [&](std::shared_ptr<target::Target> t, std::string name) {
      if (t->tcp()) {
        tdevs.push_back(backends::tcp_target_of(std::move(t), o.nsid));
        tdevs.back().describe = std::move(name);
        return;
      }
      udevs.push_back(backends::target_of(std::move(t), o.nsid));  // throws for an inactive NSID
      udevs.back().describe = std::move(name);
    };
    for (auto& t : target::open_farm(o.emu)) add(t, t->describe());
    for (auto& h : o.targets) add(hooks.open ? hooks.open(h) : target::open(h), h);
    if (!tdevs.empty() && !udevs.empty())
      throw Error(Errc::invalid_argument, "tcp:// targets cannot be mixed with PCIe or software controllers in one run");
    if (!tdevs.empty() && o.mem != MemKind::host)
      throw Error(Errc::not_supported, "tcp:// targets read into host memory only (--mem host)");
    for (auto& d : udevs) res.devices.push_back({d.describe, d.model, d.lba_size, d.ns_bytes});
    for (auto& d : tdevs) res.devices.push_back({d.describe, d.model, d.lba_size, d.ns_bytes});
  } else {
    if (o.engine == Engine::io_uring) {
      std::string why;
      if (!uring_available(&why)) throw Error(Errc::not_supported, "--engine io_uring: " + why);
    }
    for (auto& p : o.targets) kdevs.push_back(open_kernel_device(o, p, fds));
    for (auto& d : kdevs) res.devices.push_back({d.name, "kernel", d.lba_size, d.capacity});
  }

  // ---- workers (queues and buffers) ----
  std::vector<int> cpus = o.cpus.empty() ? allowed_cpus() : o.cpus;
  std::vector<std::unique_ptr<Worker>> workers;
  for (uint32_t t = 0; t < o.threads; ++t) {
    switch (o.engine) {
      case Engine::unvme:
        workers.push_back(tdevs.empty() ? make_unvme_worker(o, udevs, t, reg.gpu()) : make_tcp_worker(o, tdevs, t));
        break;
      case Engine::io_uring: workers.push_back(make_uring_worker(o, kdevs, t)); break;
      case Engine::psync: workers.push_back(make_psync_worker(o, kdevs, t)); break;
    }
  }

  // ---- threads ----
  Control ctl;
  ctl.phase.store(o.ramp_s > 0 ? kRamp : kMeasure);
  std::vector<Progress> prog(o.threads);
  res.threads.resize(o.threads);
  std::vector<std::unique_ptr<ThreadCtx>> ctx;
  for (uint32_t t = 0; t < o.threads; ++t) {
    ctx.push_back(std::make_unique<ThreadCtx>());
    int cpu = o.pin ? cpus[t % cpus.size()] : -1;
    ctx.back()->init(o, t, cpu, ctl, prog[t], res.threads[t]);
  }
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < o.threads; ++t) {
    threads.emplace_back([&, t] {
      try {
        workers[t]->run(*ctx[t]);
      } catch (const std::exception& e) {
        ctx[t]->fail(std::string("worker: ") + e.what());
        prog[t].finished.store(true);
        ctl.ready.fetch_add(1);  // in case it failed before begin()
      }
    });
  }
  while (ctl.ready.load() < o.threads) std::this_thread::sleep_for(std::chrono::microseconds(200));

  using clock = std::chrono::steady_clock;
  res.record.stamp();  // the time the I/O starts
  auto t0 = clock::now();
  ctl.go.store(true, std::memory_order_release);
  const double ramp = o.ramp_s, total = o.ios ? 0 : o.ramp_s + o.runtime_s;
  bool measuring = ramp <= 0;
  auto last = t0;
  uint64_t last_ios = 0;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto now = clock::now();
    double el = std::chrono::duration<double>(now - t0).count();
    uint32_t done = 0;
    uint64_t ios = 0;
    for (auto& p : prog) {
      done += p.finished.load(std::memory_order_acquire);
      ios += p.ios.load(std::memory_order_relaxed);
    }
    if (done == o.threads) break;
    if (ctl.failed.load(std::memory_order_relaxed)) ctl.phase.store(kStop);
    if (!o.ios) {
      if (!measuring && el >= ramp) {
        ctl.phase.store(kMeasure);
        measuring = true;
      }
      if (el >= total) ctl.phase.store(kStop);
    }
    double since = std::chrono::duration<double>(now - last).count();
    if (hooks.progress && since >= 1.0) {
      ProgressInfo pi;
      pi.ramp = !measuring;
      pi.elapsed_s = el;
      pi.total_s = total;
      pi.ios = ios;
      pi.iops = double(ios - last_ios) / since;
      pi.bytes_per_s = pi.iops * o.bs;
      hooks.progress(pi);
      last = now;
      last_ios = ios;
    }
  }
  for (auto& th : threads) th.join();
  res.wall_s = std::chrono::duration<double>(clock::now() - t0).count();

  // Queues go before their controllers, the driver's controllers before the devices.
  workers.clear();
  udevs.clear();
  return res;
}

}  // namespace aisio::perf
