// Host-side CUDA helpers of the gpu library: error checks, device discovery and the few
// driver-API calls we need (cuMemAlloc, dma-buf export), reached through
// cudaGetDriverEntryPointByVersion so that nothing links libcuda: binaries built with
// CUDA start on machines without a driver (CI) and report "no GPU" instead.
#pragma once
#include <cuda.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace aisio::gpu {

// Throws aisio::Error(Errc::system): "<what>: cudaErrorX (text)".
void cuda_check(cudaError_t e, const char* what);
void cu_check(CUresult r, const char* what);
#define AISIO_CUDA(call) ::aisio::gpu::cuda_check((call), #call)
#define AISIO_CU(call) ::aisio::gpu::cu_check((call), #call)

// Whether a CUDA device can be used here; why not (no driver, no device) otherwise.
bool device_present(std::string* why = nullptr);

struct DeviceInfo {
  int ordinal = 0;
  std::string name;          // "NVIDIA H100 80GB HBM3"
  std::string driver;        // "580.159.04" (from /proc/driver/nvidia/version), else the CUDA driver version
  int driver_cuda = 0;       // cudaDriverGetVersion, e.g. 13000
  int runtime_cuda = 0;      // cudaRuntimeGetVersion
  int cc_major = 0, cc_minor = 0;
  int sms = 0;
  int clock_khz = 0;         // SM clock: clock64() cycles per millisecond
  std::string pci_bus_id;
  bool dmabuf = false;       // CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED
  size_t memory = 0;
};
DeviceInfo device_info(int ordinal = 0);
std::string describe(const DeviceInfo& d);  // one line

// Driver-API entry points (resolved once; throws when the driver lacks one).
struct DriverApi {
  CUresult (*memAlloc)(CUdeviceptr*, size_t) = nullptr;
  CUresult (*memFree)(CUdeviceptr) = nullptr;
  CUresult (*memGetHandleForAddressRange)(void*, CUdeviceptr, size_t, CUmemRangeHandleType,
                                          unsigned long long) = nullptr;
  CUresult (*pointerSetAttribute)(const void*, CUpointer_attribute, CUdeviceptr) = nullptr;
  CUresult (*getErrorName)(CUresult, const char**) = nullptr;
  CUresult (*deviceGetAttribute)(int*, CUdevice_attribute, CUdevice) = nullptr;
};
const DriverApi& driver();

// Makes `ordinal` current on the calling thread when it is not (cheap after the first call).
void use_device(int ordinal);

// `count` T in GPU memory, not initialized; freed with the pointer.
struct CudaFree {
  void operator()(void* p) const { cudaFree(p); }
};
template <class T>
using DevPtr = std::unique_ptr<T, CudaFree>;
template <class T>
DevPtr<T> dev_alloc(size_t count) {
  T* p = nullptr;
  AISIO_CUDA(cudaMalloc(&p, sizeof(T) * count));
  return DevPtr<T>(p);
}

// An array of `count` T in GPU memory, copied from `init` or zeroed; freed with it.
template <class T>
struct DevArray {
  T* p = nullptr;
  size_t n = 0;
  explicit DevArray(size_t count, const T* init = nullptr) : n(count) {
    AISIO_CUDA(cudaMalloc(&p, sizeof(T) * std::max<size_t>(count, 1)));
    if (init) AISIO_CUDA(cudaMemcpy(p, init, sizeof(T) * count, cudaMemcpyHostToDevice));
    else AISIO_CUDA(cudaMemset(p, 0, sizeof(T) * std::max<size_t>(count, 1)));
    // Both ran on the legacy default stream and may still be in flight (a pageable
    // cudaMemcpy returns once staged). Our kernels run on non-blocking streams, which do
    // not wait for that stream: finish here so no kernel sees the array before its data.
    AISIO_CUDA(cudaStreamSynchronize(nullptr));
  }
  ~DevArray() { cudaFree(p); }
  std::vector<T> read() const {
    std::vector<T> v(n);
    AISIO_CUDA(cudaMemcpy(v.data(), p, sizeof(T) * n, cudaMemcpyDeviceToHost));
    return v;
  }
  DevArray(const DevArray&) = delete;
  DevArray& operator=(const DevArray&) = delete;
};

}  // namespace aisio::gpu
