// Internal to src/perf: the workers' factories and what the runner hands them.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backends/tcp.hpp"
#include "backends/unvme.hpp"
#include "common/uring_probe.hpp"
#include "perf/worker.hpp"

namespace aisio::backends {
class GpuBackends;
}

namespace aisio::perf {

// The I/O region on one device, in bytes and in bs-sized blocks.
struct Region {
  uint64_t start = 0;   // bytes
  uint64_t blocks = 0;  // of bs bytes
};
// Throws Error(invalid_argument) when [offset, offset + o.size) does not fit (cuda-run: offset 0).
Region make_region(const SharedOptions& o, uint64_t offset, const std::string& dev, uint64_t capacity,
                   uint32_t lba_size);
// First block of thread t for sequential workloads: the threads start spread over the region.
inline uint64_t seq_start(const Region& r, uint32_t t, uint32_t threads) {
  return uint64_t((unsigned __int128)r.blocks * t / threads);
}
// Seed of the generator of (thread, device): thread i uses seed + i on its first device.
inline uint64_t lba_seed(const PerfOptions& o, uint32_t t, uint32_t dev) {
  return o.seed + t + (uint64_t(dev) << 32);
}

// The workers of the block workload (block.cpp), one per thread, over the backends.
// --mem gpu takes the data buffers from gpu (nullptr without the CUDA build).
std::unique_ptr<Worker> make_unvme_worker(const PerfOptions& o, const std::vector<backends::UnvmeTarget>& devs,
                                          uint32_t thread, const backends::GpuBackends* gpu);

// tcp:// targets (the unvme engine's handles that are NVMe/TCP): one queue per device.
std::unique_ptr<Worker> make_tcp_worker(const PerfOptions& o, const std::vector<backends::TcpTarget>& devs,
                                        uint32_t thread);

struct KernelDevice {
  std::string name;
  int fd = -1;            // shared by the threads (pread/pwrite and io_uring are positional)
  uint32_t lba_size = 512;
  uint64_t capacity = 0;
};
std::unique_ptr<Worker> make_uring_worker(const PerfOptions& o, const std::vector<KernelDevice>& devs, uint32_t thread);
std::unique_ptr<Worker> make_psync_worker(const PerfOptions& o, const std::vector<KernelDevice>& devs, uint32_t thread);

}  // namespace aisio::perf
