// The backends this build has, and the plug point through which the CUDA build adds its
// GPU backends.
//
// A Registry is an object the caller builds (the aisio tool once per process, a test as
// it likes) and hands to the workloads; the CUDA build contributes a GpuBackends
// implementation to it (gpu/backends.hpp), the way DmaHeap takes a DmaBackend. Nothing
// is installed behind global hooks, so no feature depends on which CLI command was
// registered first.
//
//   Registry()            CPU backends only (psync, io_uring, unvme with host memory)
//   Registry(gpu)         plus the GPU backends (unvme into GPU memory, device-initiated
//                         I/O, cuFile)
//   file_paths()          every name `aisio fil run --paths` knows, built or not
//   gpu()                 the GPU plug point, or nullptr
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "memory/dma.hpp"

namespace aisio::nvme {
class Controller;
}

namespace aisio::backends {

// What the CUDA build supplies. One implementation: src/gpu/backends.cpp.
class GpuBackends {
 public:
  virtual ~GpuBackends() = default;
  // DMA memory on the GPU that `ctrl` can reach (P2P): the data buffers of the unvme
  // backend with --mem gpu. Throws aisio::Error with the reason when there is none.
  virtual std::shared_ptr<DmaHeap> data_heap(const std::shared_ptr<nvme::Controller>& ctrl) const = 0;
};

// One way of reading a data set's files, as `aisio fil run --paths` names it: a backend
// and its mode (posix-direct is psync with O_DIRECT, io_uring-buffered io_uring without).
struct FilePathInfo {
  std::string name;
  std::string summary;
  bool built = true;
  std::string why_not;
  bool gpu = false;  // reads into GPU memory (run by the CUDA build)
};

class Registry {
 public:
  Registry() : Registry(nullptr) {}
  explicit Registry(std::shared_ptr<const GpuBackends> gpu);

  const GpuBackends* gpu() const { return gpu_.get(); }
  const std::vector<FilePathInfo>& file_paths() const { return paths_; }
  const FilePathInfo* find_file_path(const std::string& name) const;
  // The paths that run on the CPU with host memory: the default of --paths.
  static std::vector<std::string> cpu_file_paths();

 private:
  std::shared_ptr<const GpuBackends> gpu_;
  std::vector<FilePathInfo> paths_;
};

}  // namespace aisio::backends
