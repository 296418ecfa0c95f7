// Which BusResolver serves a PCIe controller, chosen from the situation: its driver, what
// the IOMMU does for it (sysfs), and which of the two kernel modules are there.
//
//   driver            IOMMU for the function         resolver
//   uio_pci_generic   off, or passthrough (identity)  dmabuf_import
//   uio_pci_generic   translating (DMA, DMA-FQ)       error: no physical address is valid
//   vfio-pci          any (its container translates)  iommu_map_pa over dmabuf_import
//
// Every "no" is an Error(not_supported) that says what to install or change; with
// neither module present, one error names both packages.
#pragma once
#include <memory>
#include <string>

#include "memory/vfio_backend.hpp"
#include "p2p/bus_resolver.hpp"
#include "p2p/device_io.hpp"
#include "p2p/dmabuf_import_abi.hpp"
#include "p2p/iommu_map_pa_abi.hpp"
#include "p2p/iommu_mode.hpp"
#include "pcie/sysfs.hpp"

namespace aisio::p2p {

// Where the kernel interfaces are: the running system by default; tests point them at
// fakes (FakeSysfs, a DeviceIo that plays the modules).
struct Environment {
  std::shared_ptr<DeviceIo> io = system_device_io();
  pcie::Sysfs sys;
  std::string dmabuf_import_node = abi::kDmabufImportNode;
  std::string iommu_map_pa_node = abi::kIommuMapPaNode;
};

// The controller that must reach the memory.
struct PcieTarget {
  std::string bdf;                         // "0000:01:00.0"
  pcie::Driver driver = pcie::Driver::none;
  std::shared_ptr<IovaMapper> vfio_space;  // vfio-pci: its container's IOVA space
};

enum class Route { dmabuf_import, iommu_map_pa };

struct RouteChoice {
  Route route;
  IommuMode iommu;
  std::string why;  // one line: the situation that chose it
};

// Throws Error(not_supported) when no resolver can give valid addresses here.
RouteChoice choose_route(const PcieTarget& t, const Environment& env = {});
std::shared_ptr<BusResolver> make_resolver(const PcieTarget& t, const Environment& env = {});

}  // namespace aisio::p2p
