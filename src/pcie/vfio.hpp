// VFIO (type1 IOMMU): a container (one I/O address space), the groups attached to it
// and the devices opened from them. The container maps DMA memory (IovaMapper, used by
// VfioBackend); a device maps its BARs as MmioWindows. One VfioDevice owns the device
// fd and shares the container (and its group fds) with any other device opened into
// the same container, so one DMA mapping can serve several controllers.
//
//   auto dev  = pcie::VfioDevice::open("0000:01:00.0");      // bound to vfio-pci
//   auto bar0 = dev->map_bar(0);                              // "0000:01:00.0 BAR0 (vfio)"
//   auto heap = DmaHeap::create(std::make_unique<VfioBackend>(dev->container()));
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/fd.hpp"
#include "memory/vfio_backend.hpp"
#include "pcie/mmio.hpp"
#include "pcie/sysfs.hpp"

namespace aisio::pcie {

class VfioContainer final : public IovaMapper, public std::enable_shared_from_this<VfioContainer> {
 public:
  // Opens /dev/vfio/vfio and checks the API version and type1 support.
  static std::shared_ptr<VfioContainer> create();
  ~VfioContainer() override;
  VfioContainer(const VfioContainer&) = delete;
  VfioContainer& operator=(const VfioContainer&) = delete;

  int fd() const { return fd_; }
  // Opens /dev/vfio/<group> (once), checks it is viable, attaches it and on the first
  // group selects the type1 IOMMU. Returns the group fd (owned by the container).
  int attach_group(int group, const std::string& for_bdf);

  // IovaMapper: VFIO_IOMMU_MAP_DMA at an IOVA from the container's allocator (2 MiB
  // aligned for 2 MiB multiples, inside the IOMMU's usable ranges).
  uint64_t map_dma(void* va, size_t len) override;
  void unmap_dma(uint64_t iova, size_t len) noexcept override;
  // IovaMapper: the same allocator as map_dma, so reserved ranges and our own mappings
  // cannot collide.
  uint64_t reserve_iova(size_t len) override;
  void release_iova(uint64_t iova, size_t len) noexcept override;
  std::string describe() const override;  // the BDFs of its devices

  struct Range { uint64_t start, end; };  // inclusive
  std::vector<Range> iova_ranges() const;  // usable IOVA ranges (from VFIO_IOMMU_GET_INFO)
  void add_label(const std::string& s);

 private:
  VfioContainer() = default;
  void load_iommu_info();
  uint64_t alloc_iova(size_t len);
  void free_iova(uint64_t iova, size_t len);

  int fd_ = -1;
  bool iommu_set_ = false;
  std::map<int, int> groups_;          // group number -> fd
  std::vector<std::string> labels_;
  mutable std::mutex mu_;
  std::map<uint64_t, uint64_t> free_;  // IOVA free list: start -> length
};

class VfioDevice final : public std::enable_shared_from_this<VfioDevice> {
 public:
  // Opens a function bound to vfio-pci: its IOMMU group (from sysfs iommu_group) into
  // `container` (a new one when null), the device fd, and enables memory space and bus
  // mastering in its config space. Errors say how to fix binding/IOMMU problems.
  static std::shared_ptr<VfioDevice> open(const std::string& bdf, std::shared_ptr<VfioContainer> container = {},
                                          const Sysfs& sys = {});

  const std::string& bdf() const { return bdf_; }
  int group() const { return group_; }
  int fd() const { return fd_.get(); }
  const std::shared_ptr<VfioContainer>& container() const { return container_; }

  // Maps a memory BAR (whole, or its mmap-able sparse areas). The window keeps this
  // device (and so the container) open.
  std::shared_ptr<MmioWindow> map_bar(unsigned index = 0);

  struct Region { uint32_t flags = 0; uint64_t size = 0, offset = 0; };
  Region region_info(unsigned index) const;

  uint16_t read_config16(uint32_t off) const;
  void write_config16(uint32_t off, uint16_t v) const;
  uint16_t enable_bus_master() const;  // sets memory space + bus master; returns the command register
  bool reset();                        // VFIO_DEVICE_RESET when the device supports it

 private:
  VfioDevice() = default;
  std::string bdf_;
  int group_ = -1;
  Fd fd_;
  uint32_t device_flags_ = 0;
  std::shared_ptr<VfioContainer> container_;
};

}  // namespace aisio::pcie
