#include "homi/sriov_pf.hpp"

#include <unistd.h>

#include <cstring>

#include "common/error.hpp"
#include "homi/log.hpp"
#include "pcie/sriov.hpp"

namespace aisio::homi {

using nvme::VirtResource;

PrimaryView read_primary(AdminChannel& admin) {
  PrimaryView pv;
  admin.run_checked(nvme::cmd::identify_primary_caps(), "Identify Primary Controller Capabilities", &pv.caps,
                    sizeof pv.caps);
  // One page lists up to 127 secondaries from CNTID on: page on from the last one seen.
  uint16_t next = 0;
  for (;;) {
    nvme::SecondaryControllerList l{};
    admin.run_checked(nvme::cmd::identify_secondary_list(next), "Identify Secondary Controller List", &l, sizeof l);
    unsigned n = std::min<unsigned>(l.count, nvme::MAX_SECONDARY_ENTRIES);
    for (unsigned i = 0; i < n; ++i) pv.secondaries.push_back(l.entries[i]);
    if (n < nvme::MAX_SECONDARY_ENTRIES || l.entries[n - 1].scid == 0xFFFF) break;
    next = uint16_t(l.entries[n - 1].scid + 1);
  }
  return pv;
}

namespace {

[[noreturn]] void bad(const std::string& what) { throw Error(Errc::invalid_argument, "sriov: " + what); }

// One resource type's limits as the primary reports them.
struct Limits {
  const char* name;       // "VQ"
  uint32_t total;         // xxFRT
  uint32_t primary;       // xxRFAP: allocated to the primary, not available to secondaries
  uint16_t max;           // xxFRSM
  uint16_t gran;          // xxGRAN
  uint16_t min;           // what a secondary needs to go online
};

void check(const Limits& l, const std::vector<VfResources>& wanted, uint16_t VfResources::*field) {
  uint32_t sum = 0;
  for (size_t i = 0; i < wanted.size(); ++i) {
    uint16_t n = wanted[i].*field;
    std::string vf = "VF " + std::to_string(i + 1) + " asks " + std::to_string(n) + " " + l.name + " resources";
    if (n < l.min)
      bad(vf + "; a secondary controller needs at least " + std::to_string(l.min) + " to go online");
    if (n > l.max)
      bad(vf + "; the primary controller allows at most " + std::to_string(l.max) + " per secondary (" + l.name +
          "FRSM)");
    if (l.gran > 1 && n % l.gran)
      bad(vf + ", not a multiple of the granularity " + std::to_string(l.gran) + " (" + l.name + "GRAN)");
    sum += n;
  }
  uint32_t avail = l.total > l.primary ? l.total - l.primary : 0;
  if (sum > avail)
    bad(std::to_string(wanted.size()) + " VFs ask " + std::to_string(sum) + " " + l.name +
        " flexible resources in all; the primary controller has " + std::to_string(l.total) + " (" + l.name +
        "FRT), " + std::to_string(l.primary) + " of them allocated to itself, so at most " + std::to_string(avail) +
        " for secondaries");
}

}  // namespace

std::vector<VfPlan> plan_vfs(const PrimaryView& pv, const std::vector<VfResources>& wanted) {
  const auto& c = pv.caps;
  if (wanted.empty()) bad("no VFs configured (vfs = [...])");
  if ((c.crt & (nvme::crt::VQ | nvme::crt::VI)) != (nvme::crt::VQ | nvme::crt::VI))
    bad("the primary controller does not offer both VQ and VI flexible resources (CRT " + std::to_string(c.crt) + ")");
  check(Limits{"VQ", c.vqfrt, c.vqrfap, c.vqfrsm, c.vqgran, 2}, wanted, &VfResources::vq);
  check(Limits{"VI", c.vifrt, c.virfap, c.vifrsm, c.vigran, 1}, wanted, &VfResources::vi);
  std::vector<VfPlan> plan;
  for (size_t i = 0; i < wanted.size(); ++i) {
    uint16_t vfn = uint16_t(i + 1);
    const nvme::SecondaryControllerEntry* e = nullptr;
    for (auto& s : pv.secondaries)
      if (s.vfn == vfn) e = &s;
    if (!e)
      bad("VF " + std::to_string(vfn) + " is configured but the primary controller lists no secondary controller for it (" +
          std::to_string(pv.secondaries.size()) + " secondaries)");
    plan.push_back(VfPlan{vfn, e->scid, wanted[i]});
  }
  // Secondaries not in the plan keep what they hold: it is not available to ours.
  uint32_t vq_other = 0, vi_other = 0;
  for (auto& s : pv.secondaries)
    if (s.vfn == 0 || s.vfn > wanted.size()) vq_other += s.nvq, vi_other += s.nvi;
  uint32_t vq = 0, vi = 0;
  for (auto& p : plan) vq += p.res.vq, vi += p.res.vi;
  if (vq + vq_other + c.vqrfap > c.vqfrt || vi + vi_other + c.virfap > c.vifrt)
    bad("other secondary controllers hold " + std::to_string(vq_other) + " VQ and " + std::to_string(vi_other) +
        " VI resources: not enough left for the configured VFs");
  return plan;
}

// ---- sysfs -------------------------------------------------------------------------

namespace {

class SysfsPf final : public PfSystem {
 public:
  SysfsPf(std::string pf, pcie::Sysfs sys) : pf_(pcie::normalize_bdf(pf)), sys_(std::move(sys)) {}
  uint32_t total_vfs() override {
    pcie::PciFunction f = pcie::read_function(pf_, sys_);
    if (!f.sriov_capable) throw Error(Errc::not_supported, pf_ + " is not SR-IOV capable (no sriov_totalvfs)");
    return f.sriov_totalvfs;
  }
  uint32_t num_vfs() override { return pcie::read_function(pf_, sys_).sriov_numvfs; }
  void set_autoprobe(bool on) override { pcie::set_sriov_autoprobe(pf_, on, sys_); }
  void set_num_vfs(uint32_t n) override { pcie::set_sriov_numvfs(pf_, n, sys_); }
  std::string vf_address(uint16_t vfn) override { return pcie::vf_address(pf_, vfn, sys_); }
  std::string driver_of(const std::string& bdf) override { return pcie::read_function(bdf, sys_).driver; }
  pcie::Driver pick_driver(const std::string& bdf) override {
    return pcie::read_function(bdf, sys_).iommu_group.empty() ? pcie::Driver::uio_pci_generic : pcie::Driver::vfio_pci;
  }
  void bind(const std::string& bdf, pcie::Driver d) override { pcie::bind_driver(bdf, d, sys_); }
  void function_reset(const std::string& bdf) override {
    // A function without a reset method has no `reset` attribute: the secondary
    // controller offline/online that follows is then the only reset.
    if (access((sys_.device_dir(bdf) + "/reset").c_str(), F_OK) != 0) {
      log(Level::warn, "sriov: {} has no reset method (no sysfs reset): controller offline/online only", bdf);
      return;
    }
    pcie::function_reset(bdf, sys_);
  }

 private:
  std::string pf_;
  pcie::Sysfs sys_;
};

}  // namespace

std::unique_ptr<PfSystem> sysfs_pf_system(const std::string& pf_bdf, pcie::Sysfs sys) {
  return std::make_unique<SysfsPf>(pf_bdf, std::move(sys));
}

// ---- SriovPf -----------------------------------------------------------------------

SriovPf::SriovPf(SriovPfConfig cfg, std::unique_ptr<AdminChannel> admin, std::unique_ptr<PfSystem> sys)
    : cfg_(std::move(cfg)), admin_(std::move(admin)), sys_(std::move(sys)) {}

SriovPf::~SriovPf() { stop(); }

void SriovPf::start() {
  if (started_) return;
  const std::string pf = cfg_.address;
  uint32_t n = uint32_t(cfg_.vfs.size());
  uint32_t total = sys_->total_vfs();
  if (n > total) bad(pf + " supports " + std::to_string(total) + " VFs; the configuration asks " + std::to_string(n));
  // VFs already enabled: someone else's unless unbound or on the driver we would use.
  uint32_t present = sys_->num_vfs();
  for (uint16_t v = 1; v <= present; ++v) {
    std::string bdf = sys_->vf_address(v), drv = sys_->driver_of(bdf);
    pcie::Driver want = cfg_.driver != pcie::Driver::none ? cfg_.driver : sys_->pick_driver(bdf);
    if (!drv.empty() && pcie::parse_driver(drv) != want)
      bad("VF " + std::to_string(v) + " (" + bdf + ") of " + pf + " is bound to " + drv +
          ", another driver: homid does not take over a VF in use (unbind it, or write 0 to sriov_numvfs)");
  }
  // Everything above only read; from here on a failure undoes what was done.
  PrimaryView pv = read_primary(*admin_);
  std::vector<VfPlan> plan = plan_vfs(pv, cfg_.vfs);
  std::vector<VfState> vfs;
  try {
    sys_->set_autoprobe(false);
    // Offline needs the VF to exist (QEMU answers Invalid Controller Identifier when it
    // does not), and resources change only while offline: online secondaries go
    // offline first, then the VFs left from before are disabled.
    for (auto& p : plan)
      for (auto& e : pv.secondaries)
        if (e.scid == p.scid && (e.scs & 1))
          admin_->run_checked(nvme::cmd::virt_offline(p.scid), "Secondary Controller Offline " + std::to_string(p.scid));
    if (present) sys_->set_num_vfs(0);
    for (auto& p : plan) assign(p.scid, p.res);
    sys_->set_num_vfs(n);
    for (auto& p : plan) {
      admin_->run_checked(nvme::cmd::virt_online(p.scid), "Secondary Controller Online " + std::to_string(p.scid));
      VfState s;
      s.vfn = p.vfn;
      s.scid = p.scid;
      s.res = p.res;
      s.online = true;
      s.bdf = sys_->vf_address(p.vfn);
      s.driver = cfg_.driver != pcie::Driver::none ? cfg_.driver : sys_->pick_driver(s.bdf);
      sys_->bind(s.bdf, s.driver);
      log(Level::info, "sriov: {} VF {} ({}) secondary controller {} online with {} VQ / {} VI, bound to {}", pf,
          s.vfn, s.bdf, s.scid, s.res.vq, s.res.vi, pcie::driver_name(s.driver));
      vfs.push_back(std::move(s));
    }
  } catch (const Error& e) {
    log(Level::error, "sriov: {}: {}; disabling the VFs again", pf, e.what());
    undo(plan);
    throw;
  }
  plan_ = std::move(plan);
  vfs_ = std::move(vfs);
  started_ = true;
}

void SriovPf::assign(uint16_t scid, const VfResources& res) {
  admin_->run_checked(nvme::cmd::virt_assign(scid, VirtResource::vq, res.vq),
                      "Secondary Controller Assign " + std::to_string(res.vq) + " VQ to " + std::to_string(scid));
  admin_->run_checked(nvme::cmd::virt_assign(scid, VirtResource::vi, res.vi),
                      "Secondary Controller Assign " + std::to_string(res.vi) + " VI to " + std::to_string(scid));
}

void SriovPf::undo(const std::vector<VfPlan>& plan) noexcept {
  // Secondaries offline while their VFs still exist, then the VFs go (the kernel
  // unbinds their drivers), then the resources go back to the primary.
  auto quiet = [&](const nvme::Sqe& c, uint16_t scid, Level refused) {
    try {
      AdminResult r = admin_->run(c);
      if (!r.status.ok())
        log(refused, "sriov: {}: undo on secondary {}: {}", cfg_.address, scid, nvme::status_name(r.status));
    } catch (const std::exception& e) {
      log(Level::error, "sriov: {}: undo on secondary {}: {}", cfg_.address, scid, e.what());
    }
  };
  for (auto& p : plan) quiet(nvme::cmd::virt_offline(p.scid), p.scid, Level::debug);
  try {
    sys_->set_num_vfs(0);
  } catch (const std::exception& e) {
    log(Level::error, "sriov: {}: sriov_numvfs = 0: {}", cfg_.address, e.what());
  }
  for (auto& p : plan) {
    quiet(nvme::cmd::virt_assign(p.scid, VirtResource::vq, 0), p.scid, Level::warn);
    quiet(nvme::cmd::virt_assign(p.scid, VirtResource::vi, 0), p.scid, Level::warn);
  }
}

void SriovPf::stop() noexcept {
  if (!started_) return;
  started_ = false;
  undo(plan_);
  plan_.clear();
  vfs_.clear();
}

VfState& SriovPf::vf(uint16_t vfn) {
  for (auto& v : vfs_)
    if (v.vfn == vfn) return v;
  bad(cfg_.address + " has no VF " + std::to_string(vfn) + " under homid (" + std::to_string(vfs_.size()) +
      " configured)");
}

const VfState& SriovPf::acquire(uint64_t holder, uint16_t vfn) {
  if (vfn) {
    VfState& v = vf(vfn);
    if (v.holder) throw Error(Errc::no_memory, "VF " + std::to_string(vfn) + " of " + cfg_.address + " is held by client " + std::to_string(v.holder));
    if (!v.online) throw Error(Errc::not_ready, "VF " + std::to_string(vfn) + " of " + cfg_.address + " is out of service (its last reset failed)");
    v.holder = holder;
    ++v.grants;
    return v;
  }
  for (auto& v : vfs_)
    if (!v.holder && v.online) {
      v.holder = holder;
      ++v.grants;
      return v;
    }
  throw Error(Errc::no_memory, "function budget exhausted: every VF of " + cfg_.address + " is held");
}

void SriovPf::release(uint16_t vfn) {
  VfState& v = vf(vfn);
  if (!v.holder) return;
  v.holder = 0;
  v.online = false;  // until the reset is through
  // FLR first: the function stops its DMA into the old holder's memory at once. If the
  // function cannot be reset that way, the secondary controller offline that follows
  // still resets the controller (it stops processing and forgets its queues).
  try {
    sys_->function_reset(v.bdf);
  } catch (const Error& e) {
    log(Level::warn, "sriov: {} VF {}: function level reset failed ({}): controller offline/online only", cfg_.address,
        v.vfn, e.what());
  }
  // Offline may return the resources to the primary (QEMU 7.2 does): assign them again.
  admin_->run_checked(nvme::cmd::virt_offline(v.scid), "Secondary Controller Offline " + std::to_string(v.scid));
  assign(v.scid, v.res);
  admin_->run_checked(nvme::cmd::virt_online(v.scid), "Secondary Controller Online " + std::to_string(v.scid));
  v.online = true;
  log(Level::info, "sriov: {} VF {} ({}) reset and free again", cfg_.address, v.vfn, v.bdf);
}

void SriovPf::release_holder(uint64_t holder) noexcept {
  for (auto& v : vfs_) {
    if (v.holder != holder) continue;
    try {
      release(v.vfn);
    } catch (const std::exception& e) {
      log(Level::error, "sriov: {} VF {}: reset after client {} failed, VF out of service: {}", cfg_.address, v.vfn,
          holder, e.what());
    }
  }
}

}  // namespace aisio::homi
