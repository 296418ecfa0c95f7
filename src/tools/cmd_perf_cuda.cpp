// aisio perf cuda-run [TARGET...] [options]: device-initiated I/O (GPU threads drive the
// NVMe queues; see src/gpu/cuda_run.hpp).
//
//   aisio perf cuda-run --emu-devices 16 --queues 1 --qd 64 --bs 4k --runtime 5 --json
//   aisio perf cuda-run --null-gpu 64 --qd 256 --runtime 2
//   aisio perf cuda-run 0000:01:00.0 --queues 2 --qd 128 --bs 512
#if defined(AISIO_HAVE_GPU)
#include <fmt/format.h>


#include "backends/gpus.hpp"
#include "common/error.hpp"
#include "gpu/cuda_run.hpp"
#include "perf/options.hpp"
#include "report/output.hpp"
#include "report/record.hpp"
#include "tools/command.hpp"

namespace aisio::tools {
namespace {

void run_cuda(gpu::CudaRunOptions o) {
  gpu::CudaRunResult r = gpu::cuda_run(o);
  if (!report::emit_json(gpu::to_json(r), o)) fmt::print("{}", gpu::to_text(r));
  std::fflush(stdout);
  if (r.errors || !r.controller_counts_match)
    throw Error(Errc::io, fmt::format("cuda-run: {} error(s), {} timeout(s), {} spurious completion(s){}{}", r.errors,
                                      r.timeouts, r.spurious, r.first_error_text.empty() ? "" : "; first: ",
                                      r.first_error_text));
}

CommandRegistrar reg(41, [](CLI::App& app) {
  CLI::App* perf_cmd = nullptr;
  try {
    perf_cmd = app.get_subcommand("perf");  // registered by cmd_perf.cpp (order 40)
  } catch (const CLI::OptionNotFound&) {
    return;
  }
  auto o = std::make_shared<gpu::CudaRunOptions>();
  auto* c = perf_cmd->add_subcommand(
      "cuda-run", "Device-initiated I/O: GPU threads drive the NVMe queues (one block per queue, one thread per slot)");
  perf::add_shared_options(*c, *o, "Threads per queue = commands in flight per queue (1..1023)");
  c->add_option("--null-gpu", o->null_gpu,
                "N queues on a GPU-resident null controller (completes at once, no data): the GPU-side ceiling");
  c->add_option("--queues", o->queues, "Queue pairs per device (one thread block each)")->capture_default_str();
  c->add_option("--timeout-ms", o->timeout_ms, "Per-poll timeout, counted in GPU clock cycles")->capture_default_str();
  c->add_option("--backoff-ns", o->backoff_ns, "__nanosleep between CQ polls (0: spin)")->capture_default_str();
  c->add_option("--stop-every", o->stop_every, "Rounds between reads of the host-mapped stop flag")
      ->capture_default_str();
  c->add_option("--device", o->device, "CUDA device")->capture_default_str();
  auto gpus = std::make_shared<std::string>();
  c->add_option("--gpus", *gpus,
                "CUDA devices to spread the queues over, e.g. 0,1 (each its own queue pairs on every device and its "
                "own buffers; a device may repeat: 0,0). Default: --device");
  c->callback([o, gpus] {
    o->command_line = report::own_command_line();
    if (!gpus->empty()) o->gpus = backends::parse_gpu_list(*gpus);
    run_cuda(*o);
  });
});

}  // namespace
}  // namespace aisio::tools
#endif  // AISIO_HAVE_GPU
