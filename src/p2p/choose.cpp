#include "p2p/choose.hpp"

#include <fmt/format.h>

#include "common/error.hpp"
#include "p2p/dmabuf_import.hpp"
#include "p2p/iommu_map_pa.hpp"

namespace aisio::p2p {

RouteChoice choose_route(const PcieTarget& t, const Environment& env) {
  const std::string what = "GPU memory for " + t.bdf;
  if (t.driver != pcie::Driver::uio_pci_generic && t.driver != pcie::Driver::vfio_pci)
    throw Error(Errc::not_supported, fmt::format("{}: the function is bound to {}, not to uio_pci_generic or vfio-pci",
                                                 what, t.driver == pcie::Driver::none ? "no driver we drive" :
                                                                                        pcie::driver_name(t.driver)));
  RouteChoice c{Route::dmabuf_import, iommu_mode(t.bdf, env.sys), ""};
  const bool uio = t.driver == pcie::Driver::uio_pci_generic;
  if (uio && c.iommu.kind == IommuMode::unknown)
    throw Error(Errc::not_supported,
                fmt::format("{}: cannot tell whether the IOMMU translates the DMA of this uio_pci_generic function "
                            "({}; {}/kernel/iommu_groups/{}/type is unreadable, as before Linux 5.11): bind it to "
                            "vfio-pci ('aisio bind --driver vfio {}') and install {}",
                            what, c.iommu.describe(), env.sys.root(), c.iommu.group, t.bdf, abi::kIommuMapPaPackage));
  if (uio && !c.iommu.physical_addresses_valid())
    throw Error(Errc::not_supported,
                fmt::format("{}: the function is bound to uio_pci_generic while the IOMMU translates its DMA ({}): no "
                            "physical address, GPU or host, is valid for it. Bind it to vfio-pci ('aisio bind --driver "
                            "vfio {}') and install {}, or boot with iommu=pt",
                            what, c.iommu.describe(), t.bdf, abi::kIommuMapPaPackage));
  const bool have_import = env.io->exists(env.dmabuf_import_node);
  const bool have_map = env.io->exists(env.iommu_map_pa_node);
  if (!have_import && !have_map)
    throw Error(Errc::not_supported,
                fmt::format("{}: no GPU peer-to-peer kernel module is installed: {} (package {}) and {} (package {}) "
                            "are both absent. Install {} for a controller bound to uio_pci_generic with the IOMMU off "
                            "or iommu=pt; add {} for one bound to vfio-pci. (A software controller needs neither.)",
                            what, env.dmabuf_import_node, abi::kDmabufImportPackage, env.iommu_map_pa_node,
                            abi::kIommuMapPaPackage, abi::kDmabufImportPackage, abi::kIommuMapPaPackage));
  if (uio) {
    if (!have_import)
      throw Error(Errc::not_supported,
                  fmt::format("{}: {} is absent: install {} (iommu_map_pa, which is here, serves vfio-pci only)", what,
                              env.dmabuf_import_node, abi::kDmabufImportPackage));
    c.why = fmt::format("uio_pci_generic, {}: physical addresses are bus addresses", c.iommu.describe());
    return c;
  }
  // vfio-pci: the container's own domain translates whatever the default domain type is,
  // so physical addresses alone are never valid; both modules are needed.
  if (!have_map)
    throw Error(Errc::not_supported,
                fmt::format("{}: the function is bound to vfio-pci, whose IOMMU domain translates every DMA address, "
                            "so dmabuf_import's physical addresses are not valid for it and {} is absent: install {}, or "
                            "bind the function to uio_pci_generic with the IOMMU off or iommu=pt",
                            what, env.iommu_map_pa_node, abi::kIommuMapPaPackage));
  if (!have_import)
    throw Error(Errc::not_supported,
                fmt::format("{}: {} is absent: install {} (iommu_map_pa maps the physical addresses dmabuf_import "
                            "reads)",
                            what, env.dmabuf_import_node, abi::kDmabufImportPackage));
  if (!t.vfio_space)
    throw Error(Errc::invalid_argument, what + ": bound to vfio-pci but no vfio container was given");
  c.route = Route::iommu_map_pa;
  c.why = fmt::format("vfio-pci ({}; the container's domain translates): IOVAs through iommu_map_pa",
                      c.iommu.describe());
  return c;
}

std::shared_ptr<BusResolver> make_resolver(const PcieTarget& t, const Environment& env) {
  RouteChoice c = choose_route(t, env);
  switch (c.route) {
    case Route::dmabuf_import: return std::make_shared<DmabufImportResolver>(t.bdf, env.io, env.dmabuf_import_node);
    case Route::iommu_map_pa:
      return std::make_shared<IommuMapPaResolver>(t.bdf, t.vfio_space, env.io, env.dmabuf_import_node,
                                                  env.iommu_map_pa_node);
  }
  throw Error(Errc::invalid_argument, "unknown P2P route");
}

}  // namespace aisio::p2p
