#include "p2p/iommu_map_pa.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/error.hpp"
#include "p2p/dmabuf_import.hpp"

namespace aisio::p2p {

std::shared_ptr<IommuMapPaNode> IommuMapPaNode::open(std::shared_ptr<DeviceIo> io, const std::string& node) {
  std::shared_ptr<IommuMapPaNode> n(new IommuMapPaNode());
  n->io_ = std::move(io);
  n->path_ = node;
  n->fd_ = open_module_node(*n->io_, node, "iommu_map_pa", abi::kIommuMapPaPackage);
  return n;
}

IommuMapPaNode::~IommuMapPaNode() {
  if (fd_ >= 0) io_->close(fd_);
}

uint64_t IommuMapPaNode::map(const std::string& bdf, int dmabuf_fd, uint64_t iova, uint32_t page_size,
                             const std::vector<uint64_t>& phys) {
  abi::IommuMapPaReq req{};
  if (bdf.size() >= sizeof req.bdf)
    throw Error(Errc::invalid_argument, "iommu_map_pa: PCI address '" + bdf + "' does not fit the request");
  std::memcpy(req.bdf, bdf.c_str(), bdf.size() + 1);
  req.dmabuf_fd = dmabuf_fd;
  req.page_size = page_size;
  req.nphys = uint32_t(phys.size());
  req.prot = abi::kIommuMapPaProtRead | abi::kIommuMapPaProtWrite;
  req.iova_base = iova;
  req.user_phys_ptr = reinterpret_cast<uintptr_t>(phys.data());
  if (int r = io_->ioctl(fd_, abi::kIommuMapPa, &req); r != 0) {
    std::string hint;
    if (r == -EADDRINUSE || r == -EEXIST) hint = ": the domain already maps part of that IOVA range";
    if (r == -ENODEV || r == -ENOENT) hint = ": the module finds no IOMMU domain for " + bdf;
    throw Error(Errc::system, fmt::format("IOMMU_MAP_PA of {} x {} KiB for {} at IOVA {:#x} on {}: {}{}", phys.size(),
                                          page_size >> 10, bdf, iova, path_, std::strerror(-r), hint));
  }
  if (req.map_handle == 0) {
    // Nothing names the mapping, so nothing could remove it: refuse to use it.
    throw Error(Errc::protocol, "IOMMU_MAP_PA succeeded without a map handle");
  }
  return req.map_handle;
}

int IommuMapPaNode::unmap(uint64_t handle) noexcept {
  abi::IommuUnmapPaReq req{};
  req.map_handle = handle;
  return io_->ioctl(fd_, abi::kIommuUnmapPa, &req);
}

size_t coarsest_page(const std::vector<DmaSegment>& segs, size_t len) {
  uint64_t bits = len;
  for (const auto& s : segs) bits |= s.addr | s.len;
  size_t p = size_t(2) << 20;
  while (p > kPage && (bits & (p - 1))) p >>= 1;
  return p;
}

namespace {
// One range of GPU memory mapped into the controller's domain. Teardown order matters:
// the translation goes first, then the IOVA range returns to the container, and only
// then is the dma-buf detached (the attachment member is destroyed last).
struct Mapping {
  std::shared_ptr<DmabufAttachment> attachment;
  std::shared_ptr<IommuMapPaNode> node;
  std::shared_ptr<IovaMapper> iova_space;  // the container outlives the mapping
  uint64_t handle = 0, iova = 0;
  size_t reserved = 0;
  ~Mapping() {
    if (handle) {
      int r = node->unmap(handle);
      if (r != 0) {
        std::fprintf(stderr, "aisio p2p: IOMMU_UNMAP_PA of IOVA %#llx failed (%s): the range stays reserved\n",
                     (unsigned long long)iova, std::strerror(-r));
        return;
      }
    }
    if (reserved) iova_space->release_iova(iova, reserved);
  }
};
}  // namespace

IommuMapPaResolver::IommuMapPaResolver(std::string bdf, std::shared_ptr<IovaMapper> iova_space,
                                       std::shared_ptr<DeviceIo> io, std::string dmabuf_node, std::string map_node)
    : bdf_(std::move(bdf)),
      iova_space_(std::move(iova_space)),
      io_(std::move(io)),
      dmabuf_node_(std::move(dmabuf_node)),
      map_node_(std::move(map_node)) {
  if (!iova_space_) throw Error(Errc::invalid_argument, "iommu_map_pa needs the vfio container's IOVA space");
}

std::string IommuMapPaResolver::name() const {
  return "iommu_map_pa (" + map_node_ + " over " + dmabuf_node_ + ", IOVAs in the domain of " + bdf_ + ")";
}

ResolvedRange IommuMapPaResolver::resolve(uint64_t, size_t len, int dmabuf_fd) {
  if (!node_) node_ = IommuMapPaNode::open(io_, map_node_);
  auto m = std::make_shared<Mapping>();
  m->attachment = DmabufAttachment::attach(dmabuf_fd, io_, dmabuf_node_);
  const auto& segs = m->attachment->segments();
  size_t page = coarsest_page(segs, len);
  auto phys = page_table(segs, len, page, "dmabuf_import (addresses for iommu_map_pa)");
  m->node = node_;
  m->iova_space = iova_space_;
  const size_t mib2 = size_t(2) << 20;
  size_t reserve = (len + mib2 - 1) & ~(mib2 - 1);
  m->iova = iova_space_->reserve_iova(reserve);
  m->reserved = reserve;  // from here on the Mapping gives it back
  m->handle = node_->map(bdf_, m->attachment->dmabuf_fd(), m->iova, uint32_t(page), phys);
  ResolvedRange r;
  r.bus.resize(len >> kPageShift);
  for (size_t i = 0; i < r.bus.size(); ++i) r.bus[i] = m->iova + (uint64_t(i) << kPageShift);
  r.how = fmt::format("iommu_map_pa: {} x {} KiB at IOVA {:#x} in the domain of {}", phys.size(), page >> 10, m->iova,
                      bdf_);
  r.keepalive = m;
  return r;
}

}  // namespace aisio::p2p
