#include "gpu/cuda.hpp"

#include <fmt/format.h>

#include <fstream>
#include <mutex>
#include <regex>

#include "common/error.hpp"

namespace aisio::gpu {

void cuda_check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  throw Error(Errc::system, fmt::format("{}: {} ({})", what, cudaGetErrorName(e), cudaGetErrorString(e)));
}

void cu_check(CUresult r, const char* what) {
  if (r == CUDA_SUCCESS) return;
  const char* name = nullptr;
  try {
    if (driver().getErrorName) driver().getErrorName(r, &name);
  } catch (const Error&) {
  }
  throw Error(Errc::system, fmt::format("{}: {}", what, name ? name : fmt::format("CUresult {}", int(r))));
}

bool device_present(std::string* why) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (why) *why = fmt::format("no usable CUDA device: {} ({})", cudaGetErrorName(e), cudaGetErrorString(e));
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return false;
  }
  if (n == 0) {
    if (why) *why = "no CUDA device";
    return false;
  }
  return true;
}

namespace {
std::string kernel_driver_version() {
  // "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build ..."
  std::ifstream f("/proc/driver/nvidia/version");
  std::string line;
  if (!std::getline(f, line)) return "";
  std::smatch m;
  if (std::regex_search(line, m, std::regex(R"((\d+\.\d+(\.\d+)?))"))) return m[1];
  return line;
}
}  // namespace

DeviceInfo device_info(int ordinal) {
  DeviceInfo d;
  d.ordinal = ordinal;
  cudaDeviceProp p{};
  AISIO_CUDA(cudaGetDeviceProperties(&p, ordinal));
  d.name = p.name;
  d.cc_major = p.major;
  d.cc_minor = p.minor;
  d.sms = p.multiProcessorCount;
  d.memory = p.totalGlobalMem;
  int clk = 0;
  AISIO_CUDA(cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, ordinal));
  d.clock_khz = clk;
  char bus[32] = {};
  if (cudaDeviceGetPCIBusId(bus, sizeof bus, ordinal) == cudaSuccess) d.pci_bus_id = bus;
  cudaDriverGetVersion(&d.driver_cuda);
  cudaRuntimeGetVersion(&d.runtime_cuda);
  d.driver = kernel_driver_version();
  if (d.driver.empty()) d.driver = fmt::format("CUDA driver {}.{}", d.driver_cuda / 1000, d.driver_cuda % 1000 / 10);
  try {
    int dmabuf = 0;
    if (driver().deviceGetAttribute(&dmabuf, CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED, ordinal) == CUDA_SUCCESS)
      d.dmabuf = dmabuf != 0;
  } catch (const Error&) {
  }
  return d;
}

std::string describe(const DeviceInfo& d) {
  return fmt::format("{} (sm_{}{}, {} SMs, {} MHz, {:.0f} GiB, PCI {}), driver {}, CUDA driver {}.{} runtime {}.{}",
                     d.name, d.cc_major, d.cc_minor, d.sms, d.clock_khz / 1000, double(d.memory) / (1 << 30),
                     d.pci_bus_id, d.driver, d.driver_cuda / 1000, d.driver_cuda % 1000 / 10, d.runtime_cuda / 1000,
                     d.runtime_cuda % 1000 / 10);
}

const DriverApi& driver() {
  static DriverApi api;
  static std::once_flag once;
  static std::string failed;
  std::call_once(once, [] {
    auto get = [](const char* sym, void** fn) {
      cudaDriverEntryPointQueryResult q{};
      cudaError_t e = cudaGetDriverEntryPointByVersion(sym, fn, 12000, cudaEnableDefault, &q);
      if (e != cudaSuccess || q != cudaDriverEntryPointSuccess || !*fn) {
        if (failed.empty()) failed = fmt::format("driver entry point {} not found ({})", sym, cudaGetErrorName(e));
        *fn = nullptr;
      }
    };
    get("cuGetErrorName", reinterpret_cast<void**>(&api.getErrorName));
    get("cuMemAlloc", reinterpret_cast<void**>(&api.memAlloc));
    get("cuMemFree", reinterpret_cast<void**>(&api.memFree));
    get("cuMemGetHandleForAddressRange", reinterpret_cast<void**>(&api.memGetHandleForAddressRange));
    get("cuPointerSetAttribute", reinterpret_cast<void**>(&api.pointerSetAttribute));
    get("cuDeviceGetAttribute", reinterpret_cast<void**>(&api.deviceGetAttribute));
  });
  if (!failed.empty()) throw Error(Errc::not_supported, failed);
  return api;
}

void use_device(int ordinal) {
  thread_local int current = -1;
  if (current == ordinal) return;
  AISIO_CUDA(cudaSetDevice(ordinal));
  current = ordinal;
}

}  // namespace aisio::gpu
