#include "pcie/vfio.hpp"

#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/free_ranges.hpp"

namespace aisio::pcie {

namespace {
constexpr uint64_t MIB2 = 2u << 20;
constexpr uint64_t IOVA_BASE = uint64_t(1) << 32;  // above the x86 MSI window and low MMIO

std::string group_devices(int group) {
  std::string out;
  std::error_code ec;  // an unreadable directory lists nothing
  for (const auto& e : std::filesystem::directory_iterator(
           Sysfs().root() + "/kernel/iommu_groups/" + std::to_string(group) + "/devices", ec))
    out += (out.empty() ? "" : ", ") + e.path().filename().string();
  return out;
}
}  // namespace

// ---------------------------------------------------------------- container

std::shared_ptr<VfioContainer> VfioContainer::create() {
  std::shared_ptr<VfioContainer> c(new VfioContainer());
  c->fd_ = ::open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
  if (c->fd_ < 0) {
    int e = errno;
    throw Error(Errc::not_supported, std::string("open /dev/vfio/vfio: ") + std::strerror(e) +
                                         " (load the vfio-pci module: 'modprobe vfio-pci'; needs root or the "
                                         "vfio group's permissions)");
  }
  int v = ioctl(c->fd_, VFIO_GET_API_VERSION);
  if (v != VFIO_API_VERSION)
    throw Error(Errc::not_supported, "VFIO API version " + std::to_string(v) + ", expected " +
                                         std::to_string(VFIO_API_VERSION));
  if (ioctl(c->fd_, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0 &&
      ioctl(c->fd_, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) <= 0)
    throw Error(Errc::not_supported, "VFIO has no type1 IOMMU: load vfio_iommu_type1 ('modprobe vfio_iommu_type1')");
  return c;
}

VfioContainer::~VfioContainer() {
  for (auto& [g, fd] : groups_) {
    ioctl(fd, VFIO_GROUP_UNSET_CONTAINER);
    ::close(fd);
  }
  if (fd_ >= 0) ::close(fd_);
}

void VfioContainer::add_label(const std::string& s) {
  std::lock_guard lk(mu_);
  if (std::find(labels_.begin(), labels_.end(), s) == labels_.end()) labels_.push_back(s);
}

std::string VfioContainer::describe() const {
  std::lock_guard lk(mu_);
  std::string s;
  for (auto& l : labels_) s += (s.empty() ? "" : ",") + l;
  return s.empty() ? "vfio container" : s;
}

int VfioContainer::attach_group(int group, const std::string& bdf) {
  {
    std::lock_guard lk(mu_);
    if (auto it = groups_.find(group); it != groups_.end()) return it->second;
  }
  std::string path = "/dev/vfio/" + std::to_string(group);
  Fd gfd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!gfd) {
    int e = errno;
    std::string why = std::string(std::strerror(e));
    if (e == EBUSY) why += " (another process holds the group)";
    if (e == ENOENT) why += " (is " + bdf + " bound to vfio-pci? 'aisio bind --driver vfio " + bdf + "')";
    if (e == EACCES) why += " (needs root, or chown the group node to your user)";
    throw Error(Errc::system, "open " + path + ": " + why);
  }
  vfio_group_status st{};
  st.argsz = sizeof st;
  if (ioctl(gfd.get(), VFIO_GROUP_GET_STATUS, &st) != 0) throw_errno("VFIO_GROUP_GET_STATUS " + path);
  if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE))
    throw Error(Errc::invalid_argument,
                "IOMMU group " + std::to_string(group) + " is not viable: every device in it must be bound to "
                    "vfio-pci (or to no driver). Devices in the group: " + group_devices(group));
  if (ioctl(gfd.get(), VFIO_GROUP_SET_CONTAINER, &fd_) != 0) throw_errno("VFIO_GROUP_SET_CONTAINER " + path);
  std::lock_guard lk(mu_);
  if (!iommu_set_) {
    unsigned long type = ioctl(fd_, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) > 0 ? VFIO_TYPE1v2_IOMMU : VFIO_TYPE1_IOMMU;
    if (ioctl(fd_, VFIO_SET_IOMMU, type) != 0) {
      int e = errno;
      ioctl(gfd.get(), VFIO_GROUP_UNSET_CONTAINER);
      throw_errno("VFIO_SET_IOMMU (type1)", e);
    }
    iommu_set_ = true;
    load_iommu_info();
  }
  return groups_[group] = gfd.release();
}

void VfioContainer::load_iommu_info() {
  // Called with mu_ held. Start with the whole 48-bit space above IOVA_BASE, then
  // restrict it to the ranges the IOMMU reports.
  std::vector<Range> ranges;
  std::vector<uint8_t> buf(sizeof(vfio_iommu_type1_info));
  auto* info = reinterpret_cast<vfio_iommu_type1_info*>(buf.data());
  info->argsz = uint32_t(buf.size());
  if (ioctl(fd_, VFIO_IOMMU_GET_INFO, info) == 0) {
    if (info->argsz > buf.size()) {
      uint32_t need = info->argsz;
      buf.assign(need, 0);
      info = reinterpret_cast<vfio_iommu_type1_info*>(buf.data());
      info->argsz = need;
      if (ioctl(fd_, VFIO_IOMMU_GET_INFO, info) != 0) info->flags = 0;
    }
    if ((info->flags & VFIO_IOMMU_INFO_CAPS) && info->cap_offset) {
      uint32_t off = info->cap_offset;
      while (off && off + sizeof(vfio_info_cap_header) <= buf.size()) {
        auto* h = reinterpret_cast<vfio_info_cap_header*>(buf.data() + off);
        if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
          auto* r = reinterpret_cast<vfio_iommu_type1_info_cap_iova_range*>(h);
          for (uint32_t i = 0; i < r->nr_iovas; ++i)
            ranges.push_back({r->iova_ranges[i].start, r->iova_ranges[i].end});
        }
        off = h->next;
      }
    }
  }
  if (ranges.empty()) ranges.push_back({0, (uint64_t(1) << 39) - 1});  // 39-bit: the smallest VT-d width
  for (auto r : ranges) {
    uint64_t s = std::max(r.start, IOVA_BASE);
    s = (s + MIB2 - 1) & ~(MIB2 - 1);
    if (r.end < s || r.end - s + 1 < MIB2) continue;
    uint64_t len = ((r.end - s + 1) & ~(MIB2 - 1));
    free_range(free_, s, len);
  }
}

std::vector<VfioContainer::Range> VfioContainer::iova_ranges() const {
  std::lock_guard lk(mu_);
  std::vector<Range> r;
  for (auto& [s, l] : free_) r.push_back({s, s + l - 1});
  return r;
}

uint64_t VfioContainer::alloc_iova(size_t len) {
  if (auto iova = take_range(free_, len, len % MIB2 == 0 ? MIB2 : 4096)) return *iova;
  throw Error(Errc::no_memory, "VFIO IOVA space exhausted (" + std::to_string(len) + " bytes wanted)");
}

void VfioContainer::free_iova(uint64_t iova, size_t len) { free_range(free_, iova, len); }

uint64_t VfioContainer::map_dma(void* va, size_t len) {
  if ((uintptr_t(va) | len) & 4095) throw Error(Errc::invalid_argument, "vfio DMA mapping must be 4 KiB aligned");
  std::lock_guard lk(mu_);
  if (!iommu_set_) throw Error(Errc::invalid_argument, "vfio container has no group attached yet");
  uint64_t iova = alloc_iova(len);
  vfio_iommu_type1_dma_map m{};
  m.argsz = sizeof m;
  m.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
  m.vaddr = uintptr_t(va);
  m.iova = iova;
  m.size = len;
  if (ioctl(fd_, VFIO_IOMMU_MAP_DMA, &m) != 0) {
    int e = errno;
    free_iova(iova, len);
    std::string hint;
    if (e == ENOMEM)
      hint = " (the pinned memory counts against RLIMIT_MEMLOCK: raise 'ulimit -l' or run as root)";
    throw Error(Errc::system, "VFIO_IOMMU_MAP_DMA of " + std::to_string(len) + " bytes: " + std::strerror(e) + hint);
  }
  return iova;
}

void VfioContainer::unmap_dma(uint64_t iova, size_t len) noexcept {
  std::lock_guard lk(mu_);
  vfio_iommu_type1_dma_unmap u{};
  u.argsz = sizeof u;
  u.iova = iova;
  u.size = len;
  if (ioctl(fd_, VFIO_IOMMU_UNMAP_DMA, &u) == 0) free_iova(iova, len);
  // On failure the IOVA range stays allocated: reusing it could alias live mappings.
}

uint64_t VfioContainer::reserve_iova(size_t len) {
  if (len == 0 || len % MIB2) throw Error(Errc::invalid_argument, "IOVA reservations are whole 2 MiB multiples");
  std::lock_guard lk(mu_);
  if (!iommu_set_) throw Error(Errc::invalid_argument, "vfio container has no group attached yet");
  return alloc_iova(len);
}

void VfioContainer::release_iova(uint64_t iova, size_t len) noexcept {
  std::lock_guard lk(mu_);
  free_iova(iova, len);
}

// ---------------------------------------------------------------- device

namespace {
class VfioBar final : public MmioWindow {
 public:
  VfioBar(uint8_t* base, size_t size, size_t map_len, std::shared_ptr<VfioDevice> dev, unsigned index)
      : MmioWindow(base, size), map_len_(map_len), dev_(std::move(dev)), index_(index) {}
  ~VfioBar() override { munmap(base_, map_len_); }
  std::string describe() const override { return dev_->bdf() + " BAR" + std::to_string(index_) + " (vfio)"; }

 private:
  size_t map_len_;
  std::shared_ptr<VfioDevice> dev_;
  unsigned index_;
};
}  // namespace

std::shared_ptr<VfioDevice> VfioDevice::open(const std::string& bdf_in, std::shared_ptr<VfioContainer> container,
                                             const Sysfs& sys) {
  std::string bdf = normalize_bdf(bdf_in);
  PciFunction f = read_function(bdf, sys);
  if (f.driver != "vfio-pci")
    throw Error(Errc::invalid_argument, bdf + " is bound to " + (f.driver.empty() ? std::string("no driver") : f.driver) +
                                            ", not vfio-pci: run 'aisio bind --driver vfio " + bdf + "' first");
  if (f.iommu_group.empty())
    throw Error(Errc::not_supported, bdf + " has no IOMMU group: boot with the IOMMU on (intel_iommu=on or "
                                           "amd_iommu=on) to use vfio, or bind to uio instead");
  std::shared_ptr<VfioDevice> d(new VfioDevice());
  d->bdf_ = bdf;
  d->group_ = std::stoi(f.iommu_group);
  d->container_ = container ? std::move(container) : VfioContainer::create();
  int gfd = d->container_->attach_group(d->group_, bdf);
  d->fd_.reset(ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, bdf.c_str()));
  if (!d->fd_) throw_errno("VFIO_GROUP_GET_DEVICE_FD " + bdf);
  vfio_device_info info{};
  info.argsz = sizeof info;
  if (ioctl(d->fd_.get(), VFIO_DEVICE_GET_INFO, &info) != 0) throw_errno("VFIO_DEVICE_GET_INFO " + bdf);
  if (!(info.flags & VFIO_DEVICE_FLAGS_PCI)) throw Error(Errc::not_supported, bdf + " is not a vfio PCI device");
  d->device_flags_ = info.flags;
  d->container_->add_label(bdf);
  d->enable_bus_master();
  return d;
}

VfioDevice::Region VfioDevice::region_info(unsigned index) const {
  vfio_region_info ri{};
  ri.argsz = sizeof ri;
  ri.index = index;
  if (ioctl(fd_.get(), VFIO_DEVICE_GET_REGION_INFO, &ri) != 0)
    throw_errno("VFIO_DEVICE_GET_REGION_INFO " + bdf_ + " region " + std::to_string(index));
  return {ri.flags, ri.size, ri.offset};
}

uint16_t VfioDevice::read_config16(uint32_t off) const {
  Region cfg = region_info(VFIO_PCI_CONFIG_REGION_INDEX);
  uint16_t v = 0;
  if (pread(fd_.get(), &v, 2, off_t(cfg.offset + off)) != 2) throw_errno("read config space of " + bdf_);
  return v;
}

void VfioDevice::write_config16(uint32_t off, uint16_t v) const {
  Region cfg = region_info(VFIO_PCI_CONFIG_REGION_INDEX);
  if (pwrite(fd_.get(), &v, 2, off_t(cfg.offset + off)) != 2) throw_errno("write config space of " + bdf_);
}

uint16_t VfioDevice::enable_bus_master() const {
  uint16_t cmd = read_config16(4);
  uint16_t want = cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
  if (want != cmd) write_config16(4, want);
  return want;
}

bool VfioDevice::reset() {
  if (!(device_flags_ & VFIO_DEVICE_FLAGS_RESET)) return false;
  if (ioctl(fd_.get(), VFIO_DEVICE_RESET) != 0) throw_errno("VFIO_DEVICE_RESET " + bdf_);
  enable_bus_master();
  return true;
}

std::shared_ptr<MmioWindow> VfioDevice::map_bar(unsigned index) {
  if (index > VFIO_PCI_BAR5_REGION_INDEX) throw Error(Errc::invalid_argument, "BAR index " + std::to_string(index));
  vfio_region_info ri{};
  ri.argsz = sizeof ri;
  ri.index = index;
  if (ioctl(fd_.get(), VFIO_DEVICE_GET_REGION_INFO, &ri) != 0) throw_errno("VFIO_DEVICE_GET_REGION_INFO " + bdf_);
  if (ri.size == 0) throw Error(Errc::not_supported, bdf_ + " BAR" + std::to_string(index) + " is not implemented");
  if (!(ri.flags & VFIO_REGION_INFO_FLAG_MMAP))
    throw Error(Errc::not_supported, bdf_ + " BAR" + std::to_string(index) + " cannot be mmap'ed through vfio");
  // Sparse mmap capability: only some areas of the BAR may be mapped (older kernels keep
  // the MSI-X table out). Read the caps when there are any.
  std::vector<std::pair<uint64_t, uint64_t>> areas;
  bool msix_mappable = false;
  if ((ri.flags & VFIO_REGION_INFO_FLAG_CAPS) && ri.argsz > sizeof ri) {
    std::vector<uint8_t> buf(ri.argsz);
    auto* r2 = reinterpret_cast<vfio_region_info*>(buf.data());
    r2->argsz = uint32_t(buf.size());
    r2->index = index;
    if (ioctl(fd_.get(), VFIO_DEVICE_GET_REGION_INFO, r2) != 0) throw_errno("VFIO_DEVICE_GET_REGION_INFO " + bdf_);
    uint32_t off = r2->cap_offset;
    while (off && off + sizeof(vfio_info_cap_header) <= buf.size()) {
      auto* h = reinterpret_cast<vfio_info_cap_header*>(buf.data() + off);
      if (h->id == VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
        auto* s = reinterpret_cast<vfio_region_info_cap_sparse_mmap*>(h);
        for (uint32_t i = 0; i < s->nr_areas; ++i) areas.emplace_back(s->areas[i].offset, s->areas[i].size);
      } else if (h->id == VFIO_REGION_INFO_CAP_MSIX_MAPPABLE) {
        msix_mappable = true;
      }
      off = h->next;
    }
  }
  size_t size = size_t(ri.size);
  uint8_t* base;
  if (areas.empty() || msix_mappable) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), off_t(ri.offset));
    if (p == MAP_FAILED) throw_errno("mmap " + bdf_ + " BAR" + std::to_string(index) + " via vfio");
    base = static_cast<uint8_t*>(p);
  } else {
    void* p = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw_errno("reserve address space for " + bdf_ + " BAR" + std::to_string(index));
    base = static_cast<uint8_t*>(p);
    for (auto [aoff, alen] : areas) {
      if (!alen) continue;
      void* q =
          mmap(base + aoff, alen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd_.get(), off_t(ri.offset + aoff));
      if (q == MAP_FAILED) {
        int e = errno;
        munmap(base, size);
        throw_errno("mmap " + bdf_ + " BAR" + std::to_string(index) + " sparse area via vfio", e);
      }
    }
  }
  return std::make_shared<VfioBar>(base, size, size, shared_from_this(), index);
}

}  // namespace aisio::pcie
