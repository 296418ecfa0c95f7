// GPU memory for a controller bound to vfio-pci (its container's IOMMU domain always
// translates): the physical addresses from dmabuf_import are inserted into that domain by
// the iommu_map_pa module (/dev/iommu_map_pa, package iommu-map-pa-dkms) at an IOVA range
// reserved from the container's own allocator (IovaMapper::reserve_iova), and the
// controller is given those IOVAs.
//
// Safety limits (the module's own README lists them; they hold here too):
//  - It borrows the live domain of the function behind vfio's back: vfio and the kernel's
//    locked-memory accounting know nothing of these mappings. The reservation keeps our
//    own VFIO_IOMMU_MAP_DMA away from them; another user of the same container would not
//    know of them.
//  - Every mapping must be gone before the domain changes: before the container is
//    closed, the group detached, or the function re-bound or reset into another domain.
//    A mapping holds the container (shared_ptr) and is removed on free; a process that
//    dies leaves the removal to the module's release of its descriptor.
//  - The module trusts the addresses it is given. They come from dmabuf_import for the
//    same dma-buf, which stays attached (and referenced by the mapping) until the
//    mapping is gone, so the GPU memory cannot be freed under it.
//  - An unmap the module refuses leaves the IOVA range reserved for good: reusing it
//    could alias a live translation.
// The lasting fix is iommufd's IOMMU_IOAS_MAP_FILE with dma-buf support: one more
// BusResolver when kernels accept GPU dma-bufs there.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "memory/vfio_backend.hpp"
#include "p2p/bus_resolver.hpp"
#include "p2p/device_io.hpp"
#include "p2p/dmabuf_import_abi.hpp"
#include "p2p/iommu_map_pa_abi.hpp"

namespace aisio::p2p {

// The module's descriptor: the mappings made through it belong to it.
class IommuMapPaNode {
 public:
  static std::shared_ptr<IommuMapPaNode> open(std::shared_ptr<DeviceIo> io,
                                              const std::string& node = abi::kIommuMapPaNode);
  ~IommuMapPaNode();
  IommuMapPaNode(const IommuMapPaNode&) = delete;
  IommuMapPaNode& operator=(const IommuMapPaNode&) = delete;

  // Maps phys[i] at iova + i * page_size, read and write, into bdf's current domain;
  // returns the handle. dmabuf_fd: the exporter's buffer, referenced while mapped.
  uint64_t map(const std::string& bdf, int dmabuf_fd, uint64_t iova, uint32_t page_size,
               const std::vector<uint64_t>& phys);
  int unmap(uint64_t handle) noexcept;  // 0, or -errno when the module refused
  const std::string& path() const { return path_; }

 private:
  IommuMapPaNode() = default;
  std::shared_ptr<DeviceIo> io_;
  std::string path_;
  int fd_ = -1;
};

class IommuMapPaResolver final : public BusResolver {
 public:
  IommuMapPaResolver(std::string bdf, std::shared_ptr<IovaMapper> iova_space,
                     std::shared_ptr<DeviceIo> io = system_device_io(),
                     std::string dmabuf_node = abi::kDmabufImportNode, std::string map_node = abi::kIommuMapPaNode);
  ResolvedRange resolve(uint64_t va, size_t len, int dmabuf_fd) override;
  bool needs_dmabuf() const override { return true; }
  std::string name() const override;

 private:
  std::string bdf_;
  std::shared_ptr<IovaMapper> iova_space_;
  std::shared_ptr<DeviceIo> io_;
  std::string dmabuf_node_, map_node_;
  std::shared_ptr<IommuMapPaNode> node_;  // opened on first use, shared by the mappings
};

// The coarsest page size, 2 MiB down to 64 KiB, that every segment (address and length)
// and `len` are multiples of: fewer entries for the module to insert.
size_t coarsest_page(const std::vector<DmaSegment>& segs, size_t len);

}  // namespace aisio::p2p
