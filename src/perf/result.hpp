// What one run of `aisio perf run` measured: per thread and per direction I/O counts,
// latency histograms (nanoseconds, sampled), CPU time; plus the run's context.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "perf/latency.hpp"
#include "perf/options.hpp"
#include "report/record.hpp"

namespace aisio::perf {

struct DirResult {
  uint64_t ios = 0;
  uint64_t bytes = 0;
  LatencyHistogram lat;  // ns; every lat_sample-th I/O
  void merge(const DirResult& o) {
    ios += o.ios;
    bytes += o.bytes;
    lat.merge(o.lat);
  }
};

struct ThreadResult {
  uint32_t index = 0;
  int cpu = -1;          // pinned core, -1 when not pinned
  double seconds = 0;    // measured interval
  DirResult dir[2];      // 0 read, 1 write
  double usr_s = 0, sys_s = 0;  // CPU time of the thread within the interval (RUSAGE_THREAD)
  uint64_t ctx_switches = 0;
  uint64_t loops = 0;       // polling passes (unvme, io_uring: submit/reap rounds)
  uint64_t idle_loops = 0;  // passes that reaped nothing
  uint64_t errors = 0;
  std::string first_error;  // e.g. "LBA Out of Range (SCT 0h SC 80h) on emu:a nsid 1 read lba 123"
  uint64_t ios() const { return dir[0].ios + dir[1].ios; }
  double iops() const { return seconds > 0 ? double(ios()) / seconds : 0; }
};

struct DeviceInfo {
  std::string name;       // handle, block device or file
  std::string model;      // Identify model number / "file" / "block device"
  uint32_t lba_size = 0;  // bytes per block the region is counted in
  uint64_t capacity = 0;  // bytes
};

struct RunResult {
  PerfOptions opts;
  std::vector<DeviceInfo> devices;
  std::vector<ThreadResult> threads;
  report::Record record;  // machine, commit, command line; started when the I/O starts
  double wall_s = 0;     // from start of I/O to the end, ramp included
  std::vector<std::string> notes;  // adjustments the run made (e.g. psync forces qd 1)

  // Sums over the threads; seconds = the longest thread interval, so iops() is the
  // aggregate rate (the threads run concurrently).
  ThreadResult total() const;
  double total_iops() const;  // sum of per-thread rates
  uint64_t errors() const;
};

}  // namespace aisio::perf
