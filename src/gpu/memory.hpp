// GPU memory for NVMe I/O: device memory from cuMemAlloc, exported as a dma-buf
// (cuMemGetHandleForAddressRange, CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD), and a table of
// bus addresses at 64 KiB granularity (the GPU page size) produced by a p2p::BusResolver
// chosen for the controller (resolver_for):
//
//   PCIe controllers: the kernel modules users install (src/p2p: dmabuf_import, and
//       iommu_map_pa for vfio-pci), chosen by p2p::make_resolver from driver and IOMMU;
//   EmuApertureResolver: an in-process software controller gives the memory an
//       aperture of its own in its DmaSpace (emu::DmaSpace::map_device); its I/O threads
//       move the bytes with CUDA copies (cudaMemcpyAsync on a per-thread stream).
//
// GpuDmaBackend turns this into an ordinary DmaBackend (DmaChunk with page_shift 16),
// so DmaHeap, DmaBuffer::iova() and the driver's PRP building work unchanged on it.
// The CPU cannot touch these bytes: use cudaMemcpy (or the helpers below).
#pragma once
#include <cuda.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "memory/dma.hpp"
#include "p2p/bus_resolver.hpp"

namespace aisio::nvme {
class Controller;
}
namespace aisio::emu {
class DmaSpace;
}

namespace aisio::gpu {

inline constexpr uint32_t kGpuPageShift = p2p::kPageShift;  // 64 KiB
inline constexpr size_t kGpuPage = p2p::kPage;
using p2p::BusResolver;
using p2p::ResolvedRange;

// The aperture of an in-process software controller.
class EmuApertureResolver final : public BusResolver {
 public:
  EmuApertureResolver(std::shared_ptr<emu::DmaSpace> space, int cuda_device = 0);
  ~EmuApertureResolver() override;
  ResolvedRange resolve(uint64_t va, size_t len, int dmabuf_fd) override;
  bool needs_dmabuf() const override { return false; }
  std::string name() const override { return "software controller aperture (CUDA copies)"; }

 private:
  struct Ops;
  std::shared_ptr<emu::DmaSpace> space_;
  std::shared_ptr<Ops> ops_;
};

struct GpuBackendStats {
  uint64_t chunks = 0, bytes = 0;
  uint64_t dmabuf_exports = 0;     // chunks exported as a dma-buf
  std::string dmabuf_error;        // why an export failed (the emu resolver goes on without)
};

// DmaBackend over GPU memory. Chunks are whole multiples of 2 MiB.
class GpuDmaBackend final : public DmaBackend {
 public:
  GpuDmaBackend(std::shared_ptr<BusResolver> resolver, int cuda_device = 0);
  DmaChunk grow(size_t min_bytes) override;
  std::string name() const override { return "gpu" + std::to_string(device_) + " via " + resolver_->name(); }
  const GpuBackendStats& stats() const { return stats_; }

 private:
  std::shared_ptr<BusResolver> resolver_;
  int device_;
  GpuBackendStats stats_;
};

// The resolver for a controller: the aperture of an in-process software controller, or
// for a PCIe function the one p2p::make_resolver chooses (driver, IOMMU, modules).
// Errc::not_supported otherwise, with the reason: a controller served by another
// process cannot reach this process's GPU memory; a PCIe function without the kernel
// modules it needs gets the message that names them.
std::shared_ptr<BusResolver> resolver_for(const nvme::Controller& ctrl, int cuda_device = 0);
// A DMA heap of GPU memory that `ctrl` can reach.
std::shared_ptr<DmaHeap> make_gpu_heap(const nvme::Controller& ctrl, int cuda_device = 0,
                                       size_t grow_bytes = 8u << 20);

// Host-pinned, GPU-mapped memory inside a software controller's DmaSpace: where queues
// driven by GPU threads live for a controller that cannot read GPU memory.
class PinnedEmuBackend final : public DmaBackend {
 public:
  explicit PinnedEmuBackend(std::shared_ptr<emu::DmaSpace> space) : space_(std::move(space)) {}
  DmaChunk grow(size_t min_bytes) override;
  std::string name() const override { return "host-pinned (cudaHostAlloc, mapped)"; }

 private:
  std::shared_ptr<emu::DmaSpace> space_;
};

// Whether a DmaBuffer's bytes are GPU memory (a chunk with the GPU zero hook).
bool is_gpu_memory(const void* p);

// The 64 KiB bus table of `buf` for the device side (gpu::table_iova): entry i is the bus
// address of byte i << 16. `buf` must start on a 64 KiB boundary (alloc(n, 65536)).
std::vector<uint64_t> bus_table(const DmaBuffer& buf);

}  // namespace aisio::gpu
