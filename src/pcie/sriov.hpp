// SR-IOV attributes of a physical function in sysfs, besides sriov_numvfs
// (set_sriov_numvfs in sysfs.hpp): driver autoprobe of new VFs, the VF addresses,
// Function Level Reset, and the kernel nvme character device of a function.
#pragma once
#include <cstdint>
#include <string>

#include "pcie/sysfs.hpp"

namespace aisio::pcie {

// sriov_drivers_autoprobe: whether the kernel probes drivers for VFs as they appear.
bool sriov_autoprobe(const std::string& pf, const Sysfs& sys = {});
void set_sriov_autoprobe(const std::string& pf, bool on, const Sysfs& sys = {});
// The BDF of virtual function vfn (1-based; sysfs link virtfn<vfn - 1>). Throws
// Error(invalid_argument) when it does not exist (VFs not enabled).
std::string vf_address(const std::string& pf, uint16_t vfn, const Sysfs& sys = {});
// Function Level Reset (or the kernel's best reset) through the `reset` attribute.
void function_reset(const std::string& bdf, const Sysfs& sys = {});
// "/dev/nvme0" for a function bound to the kernel nvme driver (its nvme/nvmeN child);
// throws Error(invalid_argument) naming its driver otherwise.
std::string nvme_char_device(const std::string& bdf, const Sysfs& sys = {});

}  // namespace aisio::pcie
