#include "gpu_copy.hpp"

#include <fmt/format.h>

#include "common/error.hpp"

#if defined(AISIO_PY_CUDA)
#include <cuda_runtime_api.h>
#endif

namespace aisio::py::gpu {

#if defined(AISIO_PY_CUDA)

namespace {
void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw Error(Errc::system, fmt::format("{}: {}", what, cudaGetErrorString(e)));
}
// The calling thread works on `device` for the duration of one call.
class OnDevice {
 public:
  explicit OnDevice(int device) {
    check(cudaGetDevice(&prev_), "cudaGetDevice");
    if (prev_ != device) check(cudaSetDevice(device), "cudaSetDevice");
    switched_ = prev_ != device;
  }
  ~OnDevice() {
    if (switched_) cudaSetDevice(prev_);
  }

 private:
  int prev_ = 0;
  bool switched_ = false;
};
}  // namespace

bool built() { return true; }

void require(int device) {
  int n = 0;
  check(cudaGetDeviceCount(&n), "cudaGetDeviceCount");
  if (device < 0 || device >= n)
    throw Error(Errc::invalid_argument, fmt::format("GPU {} does not exist ({} CUDA devices)", device, n));
}

void copy_to_device(void* dst, const void* src, size_t n, int device) {
  OnDevice d(device);
  check(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice), "cudaMemcpy to the GPU");
}
void copy_to_host(void* dst, const void* src, size_t n, int device) {
  OnDevice d(device);
  check(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost), "cudaMemcpy from the GPU");
}
void* alloc(size_t n, int device) {
  OnDevice d(device);
  void* p = nullptr;
  check(cudaMalloc(&p, n ? n : 1), "cudaMalloc");
  return p;
}
void free(void* p, int device) noexcept {
  int prev = 0;
  if (cudaGetDevice(&prev) != cudaSuccess) return;
  if (prev != device) cudaSetDevice(device);
  cudaFree(p);
  if (prev != device) cudaSetDevice(prev);
}
int device_of(const void* p) {
  cudaPointerAttributes a{};
  check(cudaPointerGetAttributes(&a, p), "cudaPointerGetAttributes");
  if (a.type != cudaMemoryTypeDevice && a.type != cudaMemoryTypeManaged)
    throw Error(Errc::invalid_argument, "the buffer is not CUDA device memory");
  return a.device;
}

#else

namespace {
[[noreturn]] void not_built() {
  throw Error(Errc::not_supported,
              "GPU buffers need aisio built with CUDA (cmake -DAISIO_CUDA=ON with nvcc); this build has no CUDA: "
              "use host memory (NumPy arrays, CPU tensors)");
}
}  // namespace

bool built() { return false; }
void require(int) { not_built(); }
void copy_to_device(void*, const void*, size_t, int) { not_built(); }
void copy_to_host(void*, const void*, size_t, int) { not_built(); }
void* alloc(size_t, int) { not_built(); }
void free(void*, int) noexcept {}
int device_of(const void*) { not_built(); }

#endif

}  // namespace aisio::py::gpu
