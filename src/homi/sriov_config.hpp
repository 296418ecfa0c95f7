// Configuration of an SR-IOV physical function managed by homid
// (`[[controller]] type = "sriov-pf"`; see sriov_pf.hpp for what homid does with it).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "pcie/sysfs.hpp"

namespace aisio::homi {

struct VfResources {
  uint16_t vq = 2;  // VQ flexible resources: the admin queue + one I/O queue pair at least
  uint16_t vi = 1;  // VI (interrupt) flexible resources
};

struct SriovPfConfig {
  std::string address;                 // the PF's BDF
  std::string admin_device;            // "/dev/nvme0"; empty: the PF's nvme device found in sysfs
  std::vector<VfResources> vfs;        // one per VF, VF 1 first
  pcie::Driver driver = pcie::Driver::none;  // none: vfio-pci with an IOMMU group, else uio_pci_generic
};

}  // namespace aisio::homi
