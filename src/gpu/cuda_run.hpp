// `aisio perf cuda-run`: device-initiated I/O benchmark (the paper's cuda-run). GPU
// threads drive NVMe queue pairs directly: per device `queues` queue pairs, one thread
// block per queue and one thread per command slot (qd threads), looping submit/complete
// rounds without returning to the CPU until a host-mapped stop flag is set after the
// run time. Per-queue round counts give IOPS and GB/s.
//
// Targets: controller handles (embedded, PCI address), --emu-devices N software
// controllers in this process, or --null-gpu: a GPU-resident null controller (a kernel
// that completes every command at once; queues and doorbells in device memory) that
// shows the device library's own ceiling.
//
// This is the device-initiated backend's launcher: it takes perf's shared options and
// region (perf::make_region), its report goes out through report::emit_json; only the
// submission differs (CUDA threads instead of a host thread's backend queue). With
// --gpus every GPU of the list runs its own kernel over its own queue pairs
// (backends::plan_queues).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "perf/options.hpp"
#include "perf/runner.hpp"

namespace aisio::gpu {

// The shared options (perf/options.hpp: targets, --emu-*, --rw without the mixed
// modes, --bs, --runtime, --nsid, --size, --seed, --json, --output) and the GPU's own.
// qd: threads per queue = commands in flight per queue.
struct CudaRunOptions : perf::SharedOptions {
  CudaRunOptions() { qd = 64; }
  uint32_t null_gpu = 0;       // > 0: this many queues on the GPU-resident null controller
  uint32_t queues = 1;         // queue pairs per device
  double timeout_ms = 10000;   // per poll (clock64 cycles)
  uint32_t backoff_ns = 0;
  uint32_t stop_every = 4;     // rounds between reads of the host-mapped stop flag
  int device = 0;              // the GPU when `gpus` is empty
  // --gpus 0,1: each entry (a GPU slot; a GPU may be named twice) gets `queues` queue
  // pairs on every device, its own data buffers on its GPU and its own kernel.
  std::vector<int> gpus;
  std::vector<int> gpu_list() const { return gpus.empty() ? std::vector<int>{device} : gpus; }
};

struct CudaQueueResult {
  std::string device;   // controller name
  int gpu = 0;          // CUDA device whose threads drive the queue
  uint16_t qid = 0;
  uint64_t rounds = 0, ios = 0, errors = 0;
  uint32_t first_error = 0;  // gpu::st status word
  uint64_t submitted = 0, completed = 0, timeouts = 0, spurious = 0;
  double seconds = 0;
};

struct CudaRunResult {
  CudaRunOptions opt;
  std::string gpu;             // device description
  std::string gpu_name, driver;
  std::string mode;            // "nvme", "null-gpu"
  std::vector<std::string> devices;
  std::vector<CudaQueueResult> queues;
  double seconds = 0;          // first round start to last round end (GPU global timer)
  uint64_t ios = 0, errors = 0, timeouts = 0, spurious = 0;
  double iops = 0, bytes_per_s = 0;
  uint32_t threads = 0;        // queues x qd
  // Cross-check with the software controllers' own counters: commands they executed
  // during the run == commands the GPU submitted (no lost, no duplicated command).
  bool controller_counts_checked = false;
  bool controller_counts_match = true;
  std::vector<std::pair<uint64_t, uint64_t>> per_device_counts;  // (GPU submitted, controller executed)
  std::string first_error_text;
  std::string commit;
};

// Opens o.targets (target::open) and the --emu-devices farm itself.
CudaRunResult cuda_run(const CudaRunOptions& o);
nlohmann::ordered_json to_json(const CudaRunResult& r);
std::string to_text(const CudaRunResult& r);
std::string status_text(uint32_t s);  // "ok", "timeout", NVMe status name, ...

}  // namespace aisio::gpu
