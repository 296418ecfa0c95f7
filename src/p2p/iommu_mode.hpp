// Whether the IOMMU translates a PCI function's DMA, from sysfs: no IOMMU groups at all
// (IOMMU off), the function without a group, or its group's default domain type
// (/sys/kernel/iommu_groups/N/type: "identity" = passthrough; "DMA", "DMA-FQ" and the
// rest translate). This is the domain kernel and uio drivers use; a function bound to
// vfio-pci runs in its container's own domain, which always translates.
#pragma once
#include <string>

#include "pcie/sysfs.hpp"

namespace aisio::p2p {

struct IommuMode {
  enum Kind { off, passthrough, translated, unknown } kind = unknown;
  std::string group;     // "" without one
  std::string type;      // the group's type file, "" when not read
  std::string describe() const;  // "IOMMU off", "IOMMU group 7, type identity (passthrough)", ...
  // Physical addresses (GPU BARs, hugepages) are valid bus addresses for the default domain.
  bool physical_addresses_valid() const { return kind == off || kind == passthrough; }
};

IommuMode iommu_mode(const std::string& bdf, const pcie::Sysfs& sys = {});

}  // namespace aisio::p2p
