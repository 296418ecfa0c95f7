#include "homi/managed.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>

#include "common/error.hpp"
#include "emu/controller.hpp"
#include "emu/dma_space.hpp"
#include "emu/shm.hpp"
#include "extents/device.hpp"
#include "homi/log.hpp"
#include "memory/hugepage_backend.hpp"
#include "pcie/device.hpp"
#include "pcie/vfio.hpp"
#include "spec/registers.hpp"

namespace aisio::homi {

namespace {

constexpr size_t PAGE = 4096;
constexpr size_t HUGE_PAGE = size_t(2) << 20;

// A plain mapping of a client's memfd in homid.
struct Mapping {
  uint8_t* va = nullptr;
  size_t len = 0;
  Mapping(int fd, size_t l, bool lock) : len(l) {
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) throw_errno("mmap the client's memfd (" + std::to_string(len) + " bytes)");
    va = static_cast<uint8_t*>(p);
    if (lock && mlock(va, len) != 0) {
      int e = errno;
      munmap(va, len);
      throw_errno("mlock the client's memory", e);
    }
  }
  ~Mapping() {
    if (va) munmap(va, len);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
};

// A DeviceRegion::mapping that runs `undo` when the region goes.
template <class F>
std::shared_ptr<void> on_release(F undo) {
  return std::shared_ptr<void>(nullptr, [undo](void*) { undo(); });
}

void require_sealed(int fd, uint64_t len) {
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 || !(seals & F_SEAL_SHRINK))
    throw Error(Errc::invalid_argument,
                "register_dma needs a memfd sealed with F_SEAL_SHRINK (memfd_create(MFD_ALLOW_SEALING), "
                "then fcntl(F_ADD_SEALS, F_SEAL_SHRINK)): a file that can shrink under the device is refused");
  struct stat st {};
  if (fstat(fd, &st) != 0) throw_errno("fstat the client's memfd");
  if (!S_ISREG(st.st_mode)) throw Error(Errc::invalid_argument, "register_dma: the descriptor is not a memfd");
  if (uint64_t(st.st_size) < len)
    throw Error(Errc::invalid_argument, "register_dma: the memfd holds " + std::to_string(st.st_size) + " bytes, " +
                                            std::to_string(len) + " were announced");
}

}  // namespace

bool DeviceRegion::contains(uint64_t b, uint64_t len) const {
  if (len == 0 || b + len < b) return false;
  if (page_shift >= 63) {
    return !bus.empty() && b >= bus[0] && b + len <= bus[0] + length;
  }
  uint64_t page = uint64_t(1) << page_shift;
  for (size_t i = 0; i < bus.size(); ++i) {
    if (b < bus[i] || b >= bus[i] + page) continue;
    // Walk on while the bus addresses stay contiguous.
    uint64_t end = b + len;
    size_t j = i;
    while (end > bus[j] + page) {
      if (j + 1 >= bus.size() || bus[j + 1] != bus[j] + page) return false;
      ++j;
    }
    return true;
  }
  return false;
}

std::unique_ptr<ManagedController> ManagedController::open(const ControllerConfig& cfg, uint32_t index) {
  std::unique_ptr<ManagedController> m(new ManagedController(cfg, index));
  nvme::ControllerOptions opt;
  opt.io_queues = cfg.io_queues;
  if (cfg.kind == ControllerConfig::Kind::soft) {
    emu::EmuConfig ec = cfg.soft;
    ec.dstrd = 10;
    auto dev = std::make_shared<emu::SoftController>(ec);
    dev->start();
    m->ctrl_ = nvme::Controller::create(dev->bar0("emu:" + cfg.name + " (homid)"), dev->dma(), opt);
    m->device_ = dev;
    m->kind_ = wire::Kind::soft;
  } else {
    pcie::OpenOptions po;
    po.bind = cfg.bind;
    auto dev = std::make_shared<pcie::UserDevice>(pcie::open_device(cfg.address, po));
    m->ctrl_ = nvme::Controller::create(dev->bar0, dev->dma, opt);
    m->device_ = dev;
    m->kind_ = dev->vfio ? wire::Kind::pci_vfio : wire::Kind::pci_uio;
    // The descriptor clients map their doorbell page from: sysfs resource0 when the
    // kernel lets us map it, else (vfio with strict devmem) the vfio device itself.
    std::string res = "/sys/bus/pci/devices/" + dev->bdf + "/resource0";
    Fd fd(::open(res.c_str(), O_RDWR | O_CLOEXEC));
    void* p = fd ? mmap(nullptr, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0) : MAP_FAILED;
    if (p != MAP_FAILED) {
      munmap(p, PAGE);
      m->bar_fd_ = std::move(fd);
    } else if (dev->vfio) {
      m->bar_fd_.reset(::fcntl(dev->vfio->fd(), F_DUPFD_CLOEXEC, 0));
      if (!m->bar_fd_) throw_errno("dup the vfio device fd");
      m->bar_fd_offset_ = dev->vfio->region_info(0).offset;
      log(Level::warn, "{}: sysfs resource0 cannot be mapped; clients get the vfio device descriptor", cfg.name);
    } else {
      throw_errno("open/mmap " + res + " (clients map their doorbell page from it)");
    }
  }
  // Namespaces named for extents must exist.
  for (auto& b : cfg.backings) {
    bool active = false;
    for (auto& n : m->ctrl_->namespaces()) active = active || n.nsid == b.nsid;
    if (!active && (!b.block_device.empty() || !b.image.empty()))
      log(Level::warn, "{}: namespace {} has a backing configured but is not active", cfg.name, b.nsid);
  }
  return m;
}

ManagedController::~ManagedController() {
  try {
    if (ctrl_ && !ctrl_->fatal()) ctrl_->shutdown();
  } catch (const std::exception& e) {
    log(Level::warn, "{}: shutdown: {}", cfg_.name, e.what());
  }
  ctrl_.reset();
  device_.reset();
}

wire::DmaKind ManagedController::dma_kind() const {
  switch (kind_) {
    case wire::Kind::soft: return wire::DmaKind::memfd;
    case wire::Kind::pci_uio: return wire::DmaKind::hugepage;
    case wire::Kind::pci_vfio: return wire::DmaKind::iova;
  }
  return wire::DmaKind::memfd;
}

wire::ControllerInfo ManagedController::info(uint16_t in_use) const {
  wire::ControllerInfo c;
  c.index = index_;
  c.name = cfg_.name;
  c.address = ctrl_->describe();
  c.model = nvme::trim_id_string(ctrl_->id().mn, sizeof ctrl_->id().mn);
  c.serial = nvme::trim_id_string(ctrl_->id().sn, sizeof ctrl_->id().sn);
  c.kind = uint8_t(kind_);
  c.dma = uint8_t(dma_kind());
  c.dstrd = uint8_t(ctrl_->cap().dstrd());
  c.flags = uint8_t((kind_ == wire::Kind::soft ? unsigned(wire::kCtrlDoorbellsIsolated) : 0u) |
                    (ctrl_->sgl_supported() ? unsigned(wire::kCtrlSgl) : 0u) |
                    (ctrl_->fatal() ? unsigned(wire::kCtrlFatal) : 0u));
  c.page_size = ctrl_->page_size();
  c.max_transfer = uint32_t(std::min<size_t>(ctrl_->mdts_bytes(), UINT32_MAX));
  c.max_queue_depth = std::min<uint32_t>(ctrl_->cap().mqes() + 1u, 65536);
  c.queue_limit = ctrl_->io_queue_limit();
  c.queues_in_use = in_use;
  for (auto& n : ctrl_->namespaces()) {
    wire::NamespaceInfo ni{n.nsid, n.lba_size, n.nsze, 0};
    for (auto& b : cfg_.backings)
      if (b.nsid == n.nsid && (!b.block_device.empty() || !b.image.empty())) ni.has_backing = 1;
    c.namespaces.push_back(ni);
  }
  return c;
}

wire::ControllerStat ManagedController::stat(uint16_t in_use) const {
  wire::ControllerStat s;
  s.index = index_;
  s.name = cfg_.name;
  s.queues_in_use = in_use;
  s.queue_limit = ctrl_->io_queue_limit();
  if (kind_ == wire::Kind::soft) {
    auto st = std::static_pointer_cast<emu::SoftController>(device_)->stats();
    s.known = 1;
    s.admin_commands = st.admin_commands;
    s.io_commands = st.io_commands;
    s.bytes_read = st.bytes_read;
    s.bytes_written = st.bytes_written;
    s.errors = st.errors;
  }
  return s;
}

Fd ManagedController::grant_doorbells(uint16_t qid, wire::AllocQueueOk& ok) {
  Fd fd;
  uint32_t sq = ctrl_->sq_doorbell_offset(qid), cq = ctrl_->cq_doorbell_offset(qid);
  if (kind_ == wire::Kind::soft) {
    // DSTRD = 10: sq and cq are consecutive, page-aligned 4 KiB pages.
    if (sq % PAGE || cq != sq + PAGE) throw Error(Errc::not_supported, cfg_.name + ": doorbells are not page-isolated");
    auto mem = emu::SharedMemory::create("homid-doorbells-q" + std::to_string(qid), 2 * PAGE);
    uint8_t* where = ctrl_->bar0().base() + sq;
    void* p = mmap(where, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, mem.fd(), 0);
    if (p == MAP_FAILED) throw_errno("map the doorbell pages of queue " + std::to_string(qid));
    fd.reset(fcntl(mem.fd(), F_DUPFD_CLOEXEC, 0));
    if (!fd) {
      int e = errno;
      revoke_doorbells(qid);
      throw_errno("dup doorbell memfd", e);
    }
    // `mem` (our second mapping and fd) goes; the MAP_FIXED mapping keeps the pages.
    ok.map_offset = 0;
    ok.map_length = 2 * PAGE;
    ok.sq_doorbell = 0;
    ok.cq_doorbell = uint32_t(PAGE);
    ok.flags |= wire::kGrantIsolated;
  } else {
    uint64_t first = sq & ~uint64_t(PAGE - 1);
    uint64_t end = (uint64_t(cq) + 4 + PAGE - 1) & ~uint64_t(PAGE - 1);
    fd.reset(fcntl(bar_fd_.get(), F_DUPFD_CLOEXEC, 0));
    if (!fd) throw_errno("dup the BAR0 descriptor");
    ok.map_offset = bar_fd_offset_ + first;
    ok.map_length = end - first;
    ok.sq_doorbell = uint32_t(sq - first);
    ok.cq_doorbell = uint32_t(cq - first);
  }
  granted_[qid] = true;
  return fd;
}

void ManagedController::revoke_doorbells(uint16_t qid) noexcept {
  auto it = granted_.find(qid);
  if (it == granted_.end()) return;
  granted_.erase(it);
  if (kind_ != wire::Kind::soft) return;
  auto dev = std::static_pointer_cast<emu::SoftController>(device_);
  uint32_t sq = ctrl_->sq_doorbell_offset(qid);
  uint8_t* where = ctrl_->bar0().base() + sq;
  void* p = mmap(where, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, dev->bar0_fd(), off_t(sq));
  if (p == MAP_FAILED) {
    log(Level::error, "{}: cannot map the register pages of queue {} back: {}", cfg_.name, qid, std::strerror(errno));
    return;
  }
  ctrl_->bar0().write32(sq, 0);
  ctrl_->bar0().write32(sq + PAGE, 0);
}

DeviceRegion ManagedController::register_memory(Fd memfd, uint64_t len) {
  if (len == 0 || len % PAGE) throw Error(Errc::invalid_argument, "register_dma: length must be a non-zero multiple of 4 KiB");
  require_sealed(memfd.get(), len);
  DeviceRegion r;
  r.length = len;
  switch (kind_) {
    case wire::Kind::soft: {
      if (len > emu::DmaSpace::MAX_REGION) throw Error(Errc::invalid_argument, "register_dma: region larger than 1 TiB");
      auto dev = std::static_pointer_cast<emu::SoftController>(device_);
      auto mem = std::make_shared<emu::SharedMemory>(emu::SharedMemory::adopt(memfd.release(), size_t(len), true));
      auto space = dev->dma_space();
      uint64_t bus = space->map(mem->data(), mem->size(), mem);
      r.mapping = on_release([space, bus] {
        try {
          space->unmap(bus);  // returns once no device thread can touch it
        } catch (const std::exception&) {
        }
      });
      r.bus = {bus};
      r.page_shift = 63;
      break;
    }
    case wire::Kind::pci_uio: {
      struct statfs sfs {};
      if (fstatfs(memfd.get(), &sfs) != 0) throw_errno("fstatfs the client's memfd");
      if (uint64_t(sfs.f_type) != HUGETLBFS_MAGIC || uint64_t(sfs.f_bsize) != HUGE_PAGE)
        throw Error(Errc::invalid_argument,
                    cfg_.name + " is driven through uio (no IOMMU): register_dma needs a memfd of 2 MiB hugepages "
                                "(memfd_create with MFD_HUGETLB | MFD_HUGE_2MB), whose physical pages stay put");
      if (len % HUGE_PAGE) throw Error(Errc::invalid_argument, "register_dma: length must be a multiple of 2 MiB here");
      if (len / HUGE_PAGE > wire::MAX_BUS_ENTRIES) throw Error(Errc::invalid_argument, "register_dma: region too large");
      auto map = std::make_shared<Mapping>(memfd.get(), size_t(len), true);
      r.bus = HugepageBackend::physical_addresses(map->va, map->len, HUGE_PAGE);
      r.page_shift = 21;
      r.mapping = map;
      break;
    }
    case wire::Kind::pci_vfio: {
      auto dev = std::static_pointer_cast<pcie::UserDevice>(device_);
      auto map = std::make_shared<Mapping>(memfd.get(), size_t(len), false);
      auto container = dev->vfio->container();
      uint64_t iova = container->map_dma(map->va, map->len);
      // The IOMMU mapping goes first, then (with the last capture) homid's mapping.
      r.mapping = on_release([map, container, iova] { container->unmap_dma(iova, map->len); });
      r.bus = {iova};
      r.page_shift = 63;
      break;
    }
  }
  return r;
}

std::optional<uint64_t> backing_offset(const NamespaceBacking& b, const extents::BlockDevice& fdev) {
  std::optional<uint64_t> offset;
  if (!b.block_device.empty()) {
    struct stat st {};
    if (::stat(b.block_device.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) return std::nullopt;
    extents::BlockDevice cdev;
    try {
      cdev = extents::block_device(major(st.st_rdev), minor(st.st_rdev));
    } catch (const std::exception&) {
      return std::nullopt;
    }
    if (cdev.partition) return std::nullopt;  // a namespace is a whole disk
    if (fdev.disk == cdev.name) offset = fdev.partition ? fdev.partition_start : 0;
  } else if (!b.image.empty() && !fdev.loop_backing_file.empty()) {
    struct stat a {}, c {};
    if (::stat(b.image.c_str(), &a) == 0 && ::stat(fdev.loop_backing_file.c_str(), &c) == 0 && a.st_dev == c.st_dev &&
        a.st_ino == c.st_ino)
      offset = fdev.loop_offset + (fdev.partition ? fdev.partition_start : 0);
  }
  return offset;
}

std::optional<BackingMatch> ManagedController::match_backing(const extents::BlockDevice& fdev) const {
  for (auto& b : cfg_.backings) {
    std::optional<uint64_t> offset = backing_offset(b, fdev);
    if (!offset) continue;
    for (auto& n : ctrl_->namespaces())
      if (n.nsid == b.nsid) return BackingMatch{n.nsid, n.lba_size, *offset};
  }
  return std::nullopt;
}

}  // namespace aisio::homi
