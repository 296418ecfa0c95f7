#include "gpu/hooks.hpp"

#include "fil/gpu_hook.hpp"
#include "gpu/fil_gpu.hpp"
#include "gpu/queues.hpp"
#include "perf/gpu_hook.hpp"

namespace aisio::gpu {

namespace {
std::shared_ptr<DmaHeap> gpu_heap(const std::shared_ptr<nvme::Controller>& ctrl) {
  return GpuController::open(ctrl)->data_heap();
}
}  // namespace

void install_hooks() {
  perf::set_gpu_heap_factory(&gpu_heap);
  fil::set_gpu_path_runner(&run_fil_path);
}

}  // namespace aisio::gpu
