// One call from a PCI address to what the NVMe driver needs: BAR0 and a DMA heap that
// matches the function's driver (uio: hugepages with physical addresses; vfio: IOMMU
// mappings in the device's container).
//
//   auto dev = aisio::pcie::open_device("0000:01:00.0");
//   auto ctrl = aisio::nvme::Controller::create(dev.bar0, dev.dma);
#pragma once
#include <memory>
#include <string>

#include "memory/dma.hpp"
#include "memory/hugepage_backend.hpp"
#include "memory/vfio_backend.hpp"
#include "pcie/mmio.hpp"
#include "pcie/sysfs.hpp"
#include "pcie/vfio.hpp"

namespace aisio::pcie {

struct OpenOptions {
  // When the function is bound to neither uio_pci_generic nor vfio-pci: bind it (vfio
  // when it has an IOMMU group, else uio) instead of throwing.
  bool bind = false;
  HugepageOptions hugepages;                  // uio path
  VfioBackendOptions vfio;                    // vfio path
  std::shared_ptr<VfioContainer> container;   // share one container between devices
  size_t dma_grow_bytes = 8u << 20;           // DmaHeap growth step
};

struct UserDevice {
  std::string bdf;
  Driver driver = Driver::none;               // uio_pci_generic or vfio_pci
  std::shared_ptr<MmioWindow> bar0;
  std::shared_ptr<DmaHeap> dma;
  std::shared_ptr<VfioDevice> vfio;           // null on the uio path
};

UserDevice open_device(const std::string& bdf, const OpenOptions& opt = {}, const Sysfs& sys = {});

}  // namespace aisio::pcie
