#include "gpu/memory.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <mutex>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "emu/dma_space.hpp"
#include "emu/register_file.hpp"
#include "gpu/cuda.hpp"
#include "memory/vfio_backend.hpp"
#include "nvme/controller.hpp"
#include "p2p/choose.hpp"
#include "pcie/sysfs.hpp"

namespace aisio::gpu {

// ---- the software controller's aperture ----------------------------------------------

struct EmuApertureResolver::Ops {
  emu::DeviceMemoryOps ops;
  int device = 0;
};

namespace {
// Called on the software controller's I/O threads: a per-thread non-blocking stream, so
// these copies never wait for (nor are waited on by) kernels running meanwhile.
cudaStream_t copy_stream(int device) {
  thread_local cudaStream_t s = nullptr;
  thread_local int dev = -1;
  if (!s || dev != device) {
    use_device(device);
    if (cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess) s = nullptr;
    dev = device;
  }
  return s;
}
void report_copy_error(cudaError_t e, const char* what) {
  static std::once_flag once;
  std::call_once(once, [&] {
    std::fprintf(stderr, "aisio gpu: software controller %s copy failed: %s (%s); the data of the command is wrong\n",
                 what, cudaGetErrorName(e), cudaGetErrorString(e));
  });
}
template <cudaMemcpyKind Kind>
void emu_copy(void* ctx, uint8_t* dst, const uint8_t* src, size_t n) {
  cudaStream_t s = copy_stream(*static_cast<int*>(ctx));
  cudaError_t e = cudaMemcpyAsync(dst, src, n, Kind, s);
  if (e == cudaSuccess) e = cudaStreamSynchronize(s);
  if (e != cudaSuccess) report_copy_error(e, Kind == cudaMemcpyHostToDevice ? "host-to-GPU" : "GPU-to-host");
}

struct ApertureRegion {
  std::shared_ptr<emu::DmaSpace> space;
  uint64_t bus = 0;
  ~ApertureRegion() {
    if (bus) space->unmap(bus);  // waits out device threads that may still copy
  }
};
}  // namespace

EmuApertureResolver::EmuApertureResolver(std::shared_ptr<emu::DmaSpace> space, int cuda_device)
    : space_(std::move(space)), ops_(std::make_shared<Ops>()) {
  ops_->device = cuda_device;
  ops_->ops.to_device = emu_copy<cudaMemcpyHostToDevice>;
  ops_->ops.from_device = emu_copy<cudaMemcpyDeviceToHost>;
  ops_->ops.ctx = &ops_->device;
}

EmuApertureResolver::~EmuApertureResolver() = default;

ResolvedRange EmuApertureResolver::resolve(uint64_t va, size_t len, int) {
  auto region = std::make_shared<ApertureRegion>();
  region->space = space_;
  // The region keeps the ops alive until it is unmapped (no device thread uses it later).
  region->bus = space_->map_device(reinterpret_cast<uint8_t*>(va), len, ops_, &ops_->ops);
  ResolvedRange r;
  r.bus.resize(len >> kGpuPageShift);
  for (size_t i = 0; i < r.bus.size(); ++i) r.bus[i] = region->bus + (uint64_t(i) << kGpuPageShift);
  r.how = fmt::format("software controller aperture at bus {:#x}", region->bus);
  r.keepalive = region;
  return r;
}

// ---- the backend ------------------------------------------------------------------------

namespace {
void gpu_zero(uint8_t* va, size_t len) {
  // The legacy stream: never waits for kernels on the non-blocking streams aisio uses.
  cudaError_t e = cudaMemsetAsync(va, 0, len, nullptr);
  if (e == cudaSuccess) e = cudaStreamSynchronize(nullptr);
  cuda_check(e, "cudaMemset of new GPU DMA memory");
}

struct GpuAllocation {
  CUdeviceptr va = 0;
  std::shared_ptr<void> mapping;  // released (unmapped / detached) before the memory is freed
  ~GpuAllocation() {
    mapping.reset();
    if (va) driver().memFree(va);
  }
};
}  // namespace

GpuDmaBackend::GpuDmaBackend(std::shared_ptr<BusResolver> resolver, int cuda_device)
    : resolver_(std::move(resolver)), device_(cuda_device) {}

DmaChunk GpuDmaBackend::grow(size_t min_bytes) {
  use_device(device_);
  const auto& drv = driver();
  const size_t granule = size_t(2) << 20;
  size_t len = (min_bytes + granule - 1) & ~(granule - 1);
  auto alloc = std::make_shared<GpuAllocation>();
  // cuMemAlloc returns memory aligned to at least 2 MiB for allocations of this size.
  AISIO_CU(drv.memAlloc(&alloc->va, len));
  if (alloc->va & (kGpuPage - 1)) throw Error(Errc::protocol, "cuMemAlloc returned memory not 64 KiB aligned");
  // As GPUDirect RDMA asks: synchronous memory operations on this range complete before
  // a later DMA by a third party can observe it.
  unsigned one = 1;
  drv.pointerSetAttribute(&one, CU_POINTER_ATTRIBUTE_SYNC_MEMOPS, alloc->va);
  int raw_fd = -1;
  CUresult r = drv.memGetHandleForAddressRange(&raw_fd, alloc->va, len, CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, 0);
  // Closed here: a resolver that needs the dma-buf longer holds its own duplicate.
  const Fd fd(r == CUDA_SUCCESS ? raw_fd : -1);
  if (r != CUDA_SUCCESS) {
    const char* name = nullptr;
    drv.getErrorName(r, &name);
    stats_.dmabuf_error = fmt::format("cuMemGetHandleForAddressRange(DMA_BUF_FD): {}", name ? name : "?");
    if (resolver_->needs_dmabuf()) throw Error(Errc::not_supported, stats_.dmabuf_error);
  } else {
    ++stats_.dmabuf_exports;
  }
  ResolvedRange rr = resolver_->resolve(alloc->va, len, fd.get());
  alloc->mapping = rr.keepalive;
  DmaChunk c;
  c.va = reinterpret_cast<uint8_t*>(alloc->va);
  c.len = len;
  c.page_shift = kGpuPageShift;
  c.bus = std::move(rr.bus);
  c.keepalive = alloc;
  c.zero = gpu_zero;
  ++stats_.chunks;
  stats_.bytes += len;
  return c;
}

std::shared_ptr<BusResolver> resolver_for(const nvme::Controller& ctrl, int cuda_device) {
  if (auto space = emu::dma_space_of(ctrl.bar0())) return std::make_shared<EmuApertureResolver>(space, cuda_device);
  std::string d = ctrl.describe();  // "0000:01:00.0 BAR0 (vfio)" for a PCIe function
  p2p::PcieTarget t;
  try {
    t.bdf = pcie::normalize_bdf(d.substr(0, d.find(' ')));
  } catch (const Error&) {
    throw Error(Errc::not_supported,
                "GPU memory for " + d +
                    ": the controller runs in another process, which cannot reach this process's GPU memory; use an "
                    "in-process software controller (embedded, image:, --emu-devices) or a PCIe controller");
  }
  // A vfio-pci function's DMA heap maps into its container: the IOVA space GPU memory
  // is mapped into as well. Anything else is read from sysfs (uio_pci_generic).
  auto* vb = ctrl.dma() ? dynamic_cast<const VfioBackend*>(&ctrl.dma()->backend()) : nullptr;
  if (vb) {
    t.driver = pcie::Driver::vfio_pci;
    t.vfio_space = vb->shared_mapper();
  } else {
    t.driver = pcie::driver_of(pcie::read_function(t.bdf));
  }
  return p2p::make_resolver(t);
}

std::shared_ptr<DmaHeap> make_gpu_heap(const nvme::Controller& ctrl, int cuda_device, size_t grow_bytes) {
  return DmaHeap::create(std::make_unique<GpuDmaBackend>(resolver_for(ctrl, cuda_device), cuda_device), grow_bytes);
}

// ---- host-pinned memory for queues of the software controller -----------------------------

namespace {
struct PinnedRegion {
  std::shared_ptr<emu::DmaSpace> space;
  void* va = nullptr;
  uint64_t bus = 0;
  ~PinnedRegion() {
    if (bus) space->unmap(bus);
    if (va) cudaFreeHost(va);
  }
};
}  // namespace

DmaChunk PinnedEmuBackend::grow(size_t min_bytes) {
  size_t len = (min_bytes + 65535) & ~size_t(65535);
  auto r = std::make_shared<PinnedRegion>();
  r->space = space_;
  AISIO_CUDA(cudaHostAlloc(&r->va, len, cudaHostAllocMapped | cudaHostAllocPortable));
  r->bus = space_->map(static_cast<uint8_t*>(r->va), len, nullptr);
  DmaChunk c;
  c.va = static_cast<uint8_t*>(r->va);
  c.len = len;
  c.page_shift = 63;
  c.bus = {r->bus};
  c.keepalive = r;
  return c;
}

bool is_gpu_memory(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return a.type == cudaMemoryTypeDevice;
}

std::vector<uint64_t> bus_table(const DmaBuffer& buf) {
  std::vector<uint64_t> t((buf.size() + kGpuPage - 1) >> kGpuPageShift);
  for (size_t i = 0; i < t.size(); ++i) t[i] = buf.iova(i << kGpuPageShift);
  return t;
}

}  // namespace aisio::gpu
