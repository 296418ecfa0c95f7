#include "backends/registry.hpp"

#include "common/uring_probe.hpp"

namespace aisio::backends {

Registry::Registry(std::shared_ptr<const GpuBackends> gpu) : gpu_(std::move(gpu)) {
  const bool uring = uring_built(), cuda = gpu_ != nullptr;
  const std::string no_uring = uring ? "" : "not built: liburing was not found at configure time";
  const std::string no_cuda = cuda ? "" : "not built: needs the CUDA build (GPU memory and a CUDA toolchain)";
  paths_ = {
      {"posix", "pread through the page cache", true, "", false},
      {"posix-direct", "pread with O_DIRECT into aligned buffers", true, "", false},
      {"io_uring", "io_uring (liburing) with O_DIRECT, --qd in flight per thread", uring, no_uring, false},
      {"io_uring-buffered", "io_uring (liburing) through the page cache", uring, no_uring, false},
      {"unvme", "our NVMe driver, CPU-initiated, extents from FIEMAP / the XFS decoder / homid", true, "", false},
      {"unvme-gpu", "our NVMe driver, CPU-initiated, data into GPU memory (P2P), verified on the GPU", cuda, no_cuda,
       true},
      {"gpu", "our NVMe driver, GPU-initiated (GPU threads drive the queues), verified on the GPU", cuda, no_cuda,
       true},
      {"cufile", "NVIDIA GPUDirect Storage (cuFile; compat mode without nvidia-fs), verified on the GPU", cuda,
       no_cuda, true},
  };
}

const FilePathInfo* Registry::find_file_path(const std::string& name) const {
  for (const auto& p : paths_)
    if (p.name == name) return &p;
  return nullptr;
}

std::vector<std::string> Registry::cpu_file_paths() { return {"posix", "posix-direct", "io_uring", "unvme"}; }

}  // namespace aisio::backends
