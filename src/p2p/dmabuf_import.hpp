// GPU memory -> bus addresses through the dmabuf_import module (/dev/dmabuf_import,
// package dmabuf-import-dkms): ATTACH the dma-buf, read its segments with GET_MAP, keep
// the attachment (and so the node's descriptor) for the buffer's lifetime, DETACH on free.
//
// The module maps the dma-buf for itself, not for a named PCI function: its addresses are
// the memory's physical (bus) addresses. They are valid for a controller whose DMA the
// IOMMU does not translate (uio_pci_generic with the IOMMU off or iommu=pt), and they are
// what iommu_map_pa inserts into a translating domain (iommu_map_pa.hpp).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "p2p/bus_resolver.hpp"
#include "p2p/device_io.hpp"
#include "p2p/dmabuf_import_abi.hpp"

namespace aisio::p2p {

// One dma-buf attached through the module. Holds the node's descriptor (the attachment
// belongs to it) and a duplicate of the dma-buf descriptor (DETACH names the buffer by
// it, and it keeps the exporter's memory referenced); the destructor detaches and closes.
class DmabufAttachment {
 public:
  // Throws Error: not_supported when the node is absent (naming the package), system when
  // open or an ioctl is refused, protocol when the module's answer makes no sense.
  static std::shared_ptr<DmabufAttachment> attach(int dmabuf_fd, std::shared_ptr<DeviceIo> io,
                                                  const std::string& node = abi::kDmabufImportNode);
  ~DmabufAttachment();
  DmabufAttachment(const DmabufAttachment&) = delete;
  DmabufAttachment& operator=(const DmabufAttachment&) = delete;

  const std::vector<DmaSegment>& segments() const { return segs_; }
  int dmabuf_fd() const { return dmabuf_; }  // the duplicate, open while this lives

 private:
  DmabufAttachment() = default;
  std::shared_ptr<DeviceIo> io_;
  int fd_ = -1, dmabuf_ = -1;
  bool attached_ = false;
  std::vector<DmaSegment> segs_;
};

// For controllers whose DMA the IOMMU does not translate: the attachment's segments are
// the bus addresses.
class DmabufImportResolver final : public BusResolver {
 public:
  explicit DmabufImportResolver(std::string bdf, std::shared_ptr<DeviceIo> io = system_device_io(),
                                std::string node = abi::kDmabufImportNode);
  ResolvedRange resolve(uint64_t va, size_t len, int dmabuf_fd) override;
  bool needs_dmabuf() const override { return true; }
  std::string name() const override { return "dmabuf_import (" + node_ + ", physical addresses for " + bdf_ + ")"; }

 private:
  std::string bdf_;
  std::shared_ptr<DeviceIo> io_;
  std::string node_;
};

}  // namespace aisio::p2p
