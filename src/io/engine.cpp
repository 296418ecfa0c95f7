#include "io/engine.hpp"

#include "common/error.hpp"

namespace aisio::io {

namespace {
bool g_gpu_built = false;
}
void set_gpu_paths_built(bool built) { g_gpu_built = built; }

const std::vector<PathInfo>& known_paths() {
  static const std::string cuda =
      g_gpu_built ? "" : "not built: needs the CUDA build (GPU memory and a CUDA toolchain)";
  static const std::vector<PathInfo> v = {
      {"posix", "pread through the page cache", true, ""},
      {"posix-direct", "pread with O_DIRECT into aligned buffers", true, ""},
      {"io_uring", "io_uring (liburing) with O_DIRECT, --qd in flight per thread", uring_built(),
       uring_built() ? "" : "not built: liburing was not found at configure time"},
      {"io_uring-buffered", "io_uring (liburing) through the page cache", uring_built(),
       uring_built() ? "" : "not built: liburing was not found at configure time"},
      {"unvme", "our NVMe driver, CPU-initiated, extents from FIEMAP / the XFS decoder / homid", true, ""},
      // The GPU paths: run by the CUDA build through fil::set_gpu_path_runner().
      {"unvme-gpu", "our NVMe driver, CPU-initiated, data into GPU memory (P2P), verified on the GPU", g_gpu_built,
       cuda},
      {"gpu", "our NVMe driver, GPU-initiated (GPU threads drive the queues), verified on the GPU", g_gpu_built, cuda},
      {"cufile", "NVIDIA GPUDirect Storage (cuFile; compat mode without nvidia-fs), verified on the GPU", g_gpu_built,
       cuda},
  };
  return v;
}

const PathInfo* find_path_info(const std::string& name) {
  for (const auto& p : known_paths())
    if (p.name == name) return &p;
  return nullptr;
}

PollMode parse_poll_mode(const std::string& s) {
  if (s == "spin") return PollMode::spin;
  if (s == "hybrid") return PollMode::hybrid;
  throw Error(Errc::invalid_argument, "--poll '" + s + "': use spin or hybrid");
}

const char* poll_mode_name(PollMode m) { return m == PollMode::hybrid ? "hybrid" : "spin"; }

std::vector<std::string> cpu_paths() { return {"posix", "posix-direct", "io_uring", "unvme"}; }

}  // namespace aisio::io
