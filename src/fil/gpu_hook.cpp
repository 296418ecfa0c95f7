#include "fil/gpu_hook.hpp"

#include "io/engine.hpp"

namespace aisio::fil {

namespace {
GpuPathRunner g_runner = nullptr;
}

void set_gpu_path_runner(GpuPathRunner r) {
  g_runner = r;
  io::set_gpu_paths_built(r != nullptr);
}
GpuPathRunner gpu_path_runner() { return g_runner; }
bool is_gpu_path(const std::string& name) { return name == "unvme-gpu" || name == "gpu" || name == "cufile"; }

}  // namespace aisio::fil
