// A stand-in for the kernel at the system boundary of src/p2p (p2p::DeviceIo): the two
// module nodes with their ioctl ABIs, as the facts document describes them. Tests set
// which nodes exist, what the modules answer, and which calls they refuse; the fake
// records what it was asked, in order, so tests can check lifetimes and teardown order.
#pragma once
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "p2p/bus_resolver.hpp"
#include "p2p/device_io.hpp"
#include "p2p/dmabuf_import_abi.hpp"
#include "p2p/iommu_map_pa_abi.hpp"

namespace aisio::test {

class FakeKernel final : public p2p::DeviceIo {
 public:
  std::string import_node = "/fake/dev/dmabuf_import";
  std::string map_node = "/fake/dev/iommu_map_pa";
  bool import_present = true, map_present = true;
  int open_errno = 0;                              // refuse every open with this
  int attach_errno = 0, get_map_errno = 0, map_errno = 0, unmap_errno = 0;
  std::vector<p2p::DmaSegment> segments;           // what GET_MAP reports
  int get_map_extra = 0;                           // report this many more than asked (a broken module)

  struct MapReq {
    std::string bdf;
    int dmabuf_fd;
    uint32_t page_size, prot;
    uint64_t iova;
    std::vector<uint64_t> phys;
  };
  std::map<uint64_t, MapReq> mappings;             // live, by handle
  std::set<std::pair<int, int>> attachments;       // live (node fd, dma-buf fd)
  std::set<int> open_fds;
  std::vector<std::string> events;                 // "attach", "get_map", "detach", "map", "unmap", "close import"...

  bool exists(const std::string& p) override {
    return (p == import_node && import_present) || (p == map_node && map_present);
  }
  int open(const std::string& p) override {
    if (!exists(p)) return -ENOENT;
    if (open_errno) return -open_errno;
    int fd = next_fd_++;
    node_of_[fd] = p;
    open_fds.insert(fd);
    return fd;
  }
  void close(int fd) noexcept override {
    if (!open_fds.erase(fd)) {
      events.push_back("close of an unknown fd");
      return;
    }
    // As the modules do: closing the descriptor drops what belongs to it.
    for (auto it = attachments.begin(); it != attachments.end();)
      it = it->first == fd ? attachments.erase(it) : std::next(it);
    if (node_of_[fd] == map_node) mappings.clear();
    events.push_back(node_of_[fd] == import_node ? "close import" : "close map");
  }
  int ioctl(int fd, unsigned long req, void* arg) override {
    if (!open_fds.count(fd)) return -EBADF;
    const std::string& node = node_of_[fd];
    if (node == import_node) return import_ioctl(fd, req, arg);
    if (node == map_node) return map_ioctl(req, arg);
    return -ENOTTY;
  }

  // A real descriptor to stand for a dma-buf (the code dup()s and closes it).
  static int fake_dmabuf() { return eventfd(0, EFD_CLOEXEC); }
  static bool fd_open(int fd) { return fcntl(fd, F_GETFD) != -1; }
  int last_attached_dmabuf = -1;

 private:
  int import_ioctl(int fd, unsigned long req, void* arg) {
    if (req == p2p::abi::kDmabufImportAttach) {
      auto* a = static_cast<p2p::abi::DmabufImportAttach*>(arg);
      events.push_back("attach");
      if (!fd_open(a->fd)) return -EBADF;
      if (attach_errno) return -attach_errno;
      attachments.insert({fd, a->fd});
      last_attached_dmabuf = a->fd;
      a->count = uint32_t(segments.size());
      return 0;
    }
    if (req == p2p::abi::kDmabufImportGetMap) {
      auto* m = static_cast<p2p::abi::DmabufImportGetMap*>(arg);
      events.push_back("get_map");
      if (!attachments.count({fd, m->fd})) return -ENOENT;  // GET_MAP goes to the fd ATTACH went to
      if (get_map_errno) return -get_map_errno;
      if (m->count < segments.size()) return -ENOSPC;
      for (size_t i = 0; i < segments.size(); ++i) m->dma_arr[i] = {segments[i].addr, segments[i].len};
      m->count = uint32_t(segments.size()) + uint32_t(get_map_extra);
      return 0;
    }
    if (req == p2p::abi::kDmabufImportDetach) {
      int dfd = *static_cast<int*>(arg);
      events.push_back("detach");
      return attachments.erase({fd, dfd}) ? 0 : -ENOENT;
    }
    return -ENOTTY;
  }
  int map_ioctl(unsigned long req, void* arg) {
    if (req == p2p::abi::kIommuMapPa) {
      auto* r = static_cast<p2p::abi::IommuMapPaReq*>(arg);
      events.push_back("map");
      if (map_errno) return -map_errno;
      if (strnlen(r->bdf, sizeof r->bdf) == sizeof r->bdf) return -EINVAL;
      MapReq m{r->bdf, r->dmabuf_fd, r->page_size, r->prot, r->iova_base, {}};
      auto* phys = reinterpret_cast<const uint64_t*>(uintptr_t(r->user_phys_ptr));
      m.phys.assign(phys, phys + r->nphys);
      r->map_handle = next_handle_++;
      mappings[r->map_handle] = m;
      return 0;
    }
    if (req == p2p::abi::kIommuUnmapPa) {
      auto* r = static_cast<p2p::abi::IommuUnmapPaReq*>(arg);
      events.push_back("unmap");
      if (unmap_errno) return -unmap_errno;
      return mappings.erase(r->map_handle) ? 0 : -ENOENT;
    }
    return -ENOTTY;
  }
  int next_fd_ = 1000;  // never a real descriptor of this process
  uint64_t next_handle_ = 0x100;
  std::map<int, std::string> node_of_;
};

}  // namespace aisio::test
