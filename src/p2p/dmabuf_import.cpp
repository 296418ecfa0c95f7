#include "p2p/dmabuf_import.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.hpp"

namespace aisio::p2p {

std::shared_ptr<DmabufAttachment> DmabufAttachment::attach(int dmabuf_fd, std::shared_ptr<DeviceIo> io,
                                                           const std::string& node) {
  if (dmabuf_fd < 0)
    throw Error(Errc::not_supported, "dmabuf_import needs the memory exported as a dma-buf, and the export failed");
  std::shared_ptr<DmabufAttachment> a(new DmabufAttachment());
  a->io_ = std::move(io);
  a->fd_ = open_module_node(*a->io_, node, "dmabuf_import", abi::kDmabufImportPackage);
  a->dmabuf_ = ::dup(dmabuf_fd);
  if (a->dmabuf_ < 0) throw_errno("dup of the dma-buf descriptor");

  abi::DmabufImportAttach req{};
  req.fd = a->dmabuf_;
  if (int r = a->io_->ioctl(a->fd_, abi::kDmabufImportAttach, &req); r != 0)
    throw Error(Errc::system, fmt::format("DMABUF_IMPORT_ATTACH of the dma-buf on {}: {}: the module refused to map "
                                          "the memory for peer-to-peer DMA",
                                          node, std::strerror(-r)));
  a->attached_ = true;
  if (req.count == 0) throw Error(Errc::protocol, "DMABUF_IMPORT_ATTACH reported a dma-buf of 0 DMA segments");

  // GET_MAP's request ends in a flexible array of `count` segments: one allocation,
  // 8-byte aligned like the structure.
  const uint32_t room = req.count;
  std::vector<uint64_t> buf((sizeof(abi::DmabufImportGetMap) + room * sizeof(abi::DmabufImportSegment)) / 8);
  auto* map = reinterpret_cast<abi::DmabufImportGetMap*>(buf.data());
  map->fd = a->dmabuf_;
  map->count = room;
  if (int r = a->io_->ioctl(a->fd_, abi::kDmabufImportGetMap, map); r != 0)
    throw Error(Errc::system, fmt::format("DMABUF_IMPORT_GET_MAP on {}: {}", node, std::strerror(-r)));
  if (map->count > room)
    throw Error(Errc::protocol, fmt::format("DMABUF_IMPORT_GET_MAP reported {} segments, more than the {} announced by "
                                            "ATTACH and allocated",
                                            map->count, room));
  a->segs_.reserve(map->count);
  for (uint32_t i = 0; i < map->count; ++i) a->segs_.push_back({map->dma_arr[i].dma_addr, map->dma_arr[i].dma_len});
  return a;
}

DmabufAttachment::~DmabufAttachment() {
  if (attached_) {
    int fd = dmabuf_;
    io_->ioctl(fd_, abi::kDmabufImportDetach, &fd);  // closing fd_ detaches as well
  }
  if (fd_ >= 0) io_->close(fd_);
  if (dmabuf_ >= 0) ::close(dmabuf_);
}

DmabufImportResolver::DmabufImportResolver(std::string bdf, std::shared_ptr<DeviceIo> io, std::string node)
    : bdf_(std::move(bdf)), io_(std::move(io)), node_(std::move(node)) {}

ResolvedRange DmabufImportResolver::resolve(uint64_t, size_t len, int dmabuf_fd) {
  auto att = DmabufAttachment::attach(dmabuf_fd, io_, node_);
  ResolvedRange r;
  r.bus = page_table(att->segments(), len, kPage, "dmabuf_import");
  r.how = fmt::format("dmabuf_import: {} DMA segment(s), physical addresses for {}", att->segments().size(), bdf_);
  r.keepalive = att;
  return r;
}

}  // namespace aisio::p2p
