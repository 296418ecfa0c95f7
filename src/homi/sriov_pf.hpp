// SR-IOV physical function management for homid (`[[controller]] type = "sriov-pf"`).
// The PF stays with the kernel nvme driver (its file systems stay mounted); homid sends
// the virtualization commands through an AdminChannel (the kernel's admin passthrough)
// and drives the PF's sysfs attributes through a PfSystem. start() brings the virtual
// functions up in the order QEMU 7.2 and the spec need:
//   1. sriov_drivers_autoprobe = 0 (a kernel probe of a VF whose secondary controller
//      is still offline fails: "Device not ready ... CSTS=0x2");
//   2. Identify Primary Controller Capabilities and the Secondary Controller List; the
//      configured split is checked against VQFRSM/VIFRSM, the granularities and what is
//      free, before anything changes;
//   3. each secondary controller offline, then VQ and VI flexible resources assigned;
//   4. sriov_numvfs = N;
//   5. Virtualization Management Online for each secondary controller;
//   6. each VF bound to vfio-pci (uio_pci_generic where it has no IOMMU group).
// A failure anywhere undoes it all (sriov_numvfs = 0, secondaries offline, resources
// back to 0): nothing is left half-configured.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "homi/sriov_admin.hpp"
#include "homi/sriov_config.hpp"
#include "pcie/sysfs.hpp"
#include "spec/virtualization.hpp"

namespace aisio::homi {

// The primary controller as Identify CNS 14h and 15h report it.
struct PrimaryView {
  nvme::PrimaryControllerCaps caps{};
  std::vector<nvme::SecondaryControllerEntry> secondaries;
};
PrimaryView read_primary(AdminChannel& admin);

struct VfPlan {
  uint16_t vfn = 0, scid = 0;
  VfResources res;
};
// The resources of VF i + 1 = wanted[i], checked against the primary's limits. Throws
// Error(invalid_argument) naming the VF, the resource and the limit it breaks.
std::vector<VfPlan> plan_vfs(const PrimaryView& pv, const std::vector<VfResources>& wanted);

// What start() needs of sysfs, as an interface so that the unit tests can stand in.
class PfSystem {
 public:
  virtual ~PfSystem() = default;
  virtual uint32_t total_vfs() = 0;
  virtual uint32_t num_vfs() = 0;
  virtual void set_autoprobe(bool on) = 0;
  virtual void set_num_vfs(uint32_t n) = 0;
  virtual std::string vf_address(uint16_t vfn) = 0;  // VF 1 = virtfn0
  virtual std::string driver_of(const std::string& bdf) = 0;  // "" when unbound
  virtual pcie::Driver pick_driver(const std::string& bdf) = 0;
  virtual void bind(const std::string& bdf, pcie::Driver d) = 0;
  virtual void function_reset(const std::string& bdf) = 0;  // Function Level Reset
};
std::unique_ptr<PfSystem> sysfs_pf_system(const std::string& pf_bdf, pcie::Sysfs sys = {});

struct VfState {
  uint16_t vfn = 0, scid = 0;
  std::string bdf;
  bool online = false;
  VfResources res;
  pcie::Driver driver = pcie::Driver::none;
  uint64_t holder = 0;   // client id, 0 = free
  uint64_t grants = 0;   // times granted (and reset after)
};

class SriovPf {
 public:
  SriovPf(SriovPfConfig cfg, std::unique_ptr<AdminChannel> admin, std::unique_ptr<PfSystem> sys);
  ~SriovPf();
  SriovPf(const SriovPf&) = delete;
  SriovPf& operator=(const SriovPf&) = delete;

  void start();  // all or nothing; throws Error
  void stop() noexcept;  // VFs disabled, secondaries offline, resources returned
  bool started() const { return started_; }
  const std::vector<VfState>& vfs() const { return vfs_; }
  AdminChannel& admin() { return *admin_; }

  // A free VF (vfn 0: the first free one) for `holder`; throws Error(no_memory) when
  // none is free, Error(invalid_argument) for an unknown or held vfn.
  const VfState& acquire(uint64_t holder, uint16_t vfn = 0);
  // The VF is reset (FLR, then its secondary controller offline, its resources assigned
  // again, and online), so
  // the next holder starts clean, then freed. Throws Error if offline/online failed
  // (the VF then stays out of service rather than be granted dirty); a failed FLR alone
  // is logged.
  void release(uint16_t vfn);
  // Every VF this holder has (client gone); errors are logged, not thrown.
  void release_holder(uint64_t holder) noexcept;

 private:
  void assign(uint16_t scid, const VfResources& res);  // VQ, then VI flexible resources
  void undo(const std::vector<VfPlan>& plan) noexcept;
  VfState& vf(uint16_t vfn);

  SriovPfConfig cfg_;
  std::unique_ptr<AdminChannel> admin_;
  std::unique_ptr<PfSystem> sys_;
  std::vector<VfPlan> plan_;
  std::vector<VfState> vfs_;
  bool started_ = false;
};

}  // namespace aisio::homi
