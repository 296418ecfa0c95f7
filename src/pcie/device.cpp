#include "pcie/device.hpp"

#include "common/error.hpp"
#include "pcie/uio.hpp"

namespace aisio::pcie {

UserDevice open_device(const std::string& bdf_in, const OpenOptions& opt, const Sysfs& sys) {
  UserDevice d;
  d.bdf = normalize_bdf(bdf_in);
  PciFunction f = read_function(d.bdf, sys);
  Driver drv = driver_of(f);
  if (drv != Driver::uio_pci_generic && drv != Driver::vfio_pci) {
    if (!opt.bind)
      throw Error(Errc::invalid_argument,
                  d.bdf + " is bound to " + (f.driver.empty() ? std::string("no driver") : f.driver) +
                      ": bind it to a user-space driver first ('aisio bind --driver uio|vfio " + d.bdf + "')");
    drv = f.iommu_group.empty() ? Driver::uio_pci_generic : Driver::vfio_pci;
    bind_driver(d.bdf, drv, sys);
  }
  d.driver = drv;
  if (drv == Driver::vfio_pci) {
    d.vfio = VfioDevice::open(d.bdf, opt.container, sys);
    d.bar0 = d.vfio->map_bar(0);
    d.dma = DmaHeap::create(std::make_unique<VfioBackend>(d.vfio->container(), opt.vfio), opt.dma_grow_bytes);
  } else {
    d.bar0 = UioBar::open(d.bdf, 0, sys);
    d.dma = DmaHeap::create(std::make_unique<HugepageBackend>(opt.hugepages), opt.dma_grow_bytes);
  }
  return d;
}

}  // namespace aisio::pcie
