#include "homi/sriov_service.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.hpp"
#include "homi/log.hpp"
#include "pcie/sriov.hpp"
#include "spec/identify.hpp"

namespace aisio::homi {

SriovService::SriovService(const std::vector<ControllerConfig>& pfs, uint32_t first_index) : first_index_(first_index) {
  for (const ControllerConfig& cc : pfs) {
    std::string dev = cc.sriov.admin_device.empty() ? pcie::nvme_char_device(cc.sriov.address) : cc.sriov.admin_device;
    auto pf = std::make_unique<SriovPf>(cc.sriov, std::make_unique<KernelAdminChannel>(dev),
                                        sysfs_pf_system(cc.sriov.address));
    try {
      pf->start();
    } catch (const Error& e) {
      // The ones started before are stopped by pfs_'s destructors as this one unwinds.
      throw Error(e.code(), "controller '" + cc.name + "': " + e.what());
    }
    log(Level::info, "controller {} (sriov-pf {} via {}): {} VF(s) online", cc.name, cc.sriov.address, dev,
        pf->vfs().size());
    pfs_.push_back(Pf{cc, std::move(pf)});
  }
}

SriovService::~SriovService() {
  for (auto& p : pfs_) p.pf->stop();
}

wire::FunctionInfo SriovService::info(const Pf& p, const VfState& v) const {
  wire::FunctionInfo f;
  f.pf = p.cfg.name;
  f.pf_address = p.cfg.sriov.address;
  f.address = v.bdf;
  f.vfn = v.vfn;
  f.scid = v.scid;
  f.online = v.online;
  f.driver = uint8_t(v.driver == pcie::Driver::vfio_pci ? wire::Kind::pci_vfio : wire::Kind::pci_uio);
  f.vq = v.res.vq;
  f.vi = v.res.vi;
  f.holder = v.holder;
  f.grants = v.grants;
  return f;
}

wire::ListFunctionsOk SriovService::list(const AccessRule& rule) const {
  wire::ListFunctionsOk ok;
  for (auto& p : pfs_)
    if (rule.allows_controller(p.cfg.name))
      for (auto& v : p.pf->vfs()) ok.functions.push_back(info(p, v));
  return ok;
}

SriovService::Pf& SriovService::find(const std::string& name, const AccessRule& rule) {
  for (auto& p : pfs_) {
    if (!name.empty() && p.cfg.name != name) continue;
    if (!rule.allows_controller(p.cfg.name)) {
      if (name.empty()) continue;
      throw Error(Errc::invalid_argument, "policy rule '" + rule.name + "' does not allow controller '" + name + "'");
    }
    return p;
  }
  throw Error(Errc::invalid_argument, name.empty() ? "no sriov-pf controller is configured for this client"
                                                   : "no sriov-pf controller named '" + name + "'");
}

std::pair<wire::GrantFunctionOk, Fd> SriovService::grant(uint64_t client, const AccessRule& rule,
                                                          const wire::GrantFunction& r) {
  Pf& p = find(r.pf, rule);
  const VfState& v = p.pf->acquire(client, r.vfn);
  try {
    if (v.driver != pcie::Driver::uio_pci_generic)
      throw Error(Errc::not_supported, "granting a VF bound to vfio-pci is not implemented yet (configure driver = \"uio\")");
    // The holder maps BAR0 through this descriptor; bus mastering is on (an FLR clears it).
    std::string path = pcie::Sysfs().device_dir(v.bdf) + "/resource0";
    Fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd) throw_errno("open " + path);
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) throw_errno("stat " + path);
    pcie::enable_bus_master(v.bdf);
    wire::GrantFunctionOk ok;
    ok.function = info(p, v);
    ok.bar_offset = 0;
    ok.bar_size = uint64_t(st.st_size);
    log(Level::info, "client {}: granted VF {} ({}) of {}", client, v.vfn, v.bdf, p.cfg.name);
    return {std::move(ok), std::move(fd)};
  } catch (...) {
    try {
      p.pf->release(v.vfn);
    } catch (const std::exception& e) {
      log(Level::error, "{} VF {}: reset after a failed grant: {}", p.cfg.name, v.vfn, e.what());
    }
    throw;
  }
}

void SriovService::release(uint64_t client, const wire::ReleaseFunction& r) {
  for (auto& p : pfs_) {
    if (p.cfg.name != r.pf) continue;
    for (auto& v : p.pf->vfs())
      if (v.vfn == r.vfn) {
        if (v.holder != client)
          throw Error(Errc::invalid_argument, "VF " + std::to_string(r.vfn) + " of '" + r.pf + "' is not held by this client");
        p.pf->release(r.vfn);
        return;
      }
  }
  throw Error(Errc::invalid_argument, "no VF " + std::to_string(r.vfn) + " of sriov-pf controller '" + r.pf + "'");
}

void SriovService::release_client(uint64_t client) noexcept {
  for (auto& p : pfs_) p.pf->release_holder(client);
}

size_t SriovService::held_by(uint64_t client) const {
  size_t n = 0;
  for (auto& p : pfs_)
    for (auto& v : p.pf->vfs()) n += v.holder == client;
  return n;
}

std::optional<BackingOwner> SriovService::match_backing(const AccessRule& rule, const extents::BlockDevice& dev) const {
  for (size_t i = 0; i < pfs_.size(); ++i) {
    const Pf& p = pfs_[i];
    if (!rule.allows_controller(p.cfg.name)) continue;
    for (auto& b : p.cfg.backings) {
      std::optional<uint64_t> off = backing_offset(b, dev);
      if (!off) continue;
      // The PF's namespace, as its VFs see it: same NSID, same LBA format.
      nvme::IdentifyNamespace ns{};
      p.pf->admin().run_checked(nvme::cmd::identify(nvme::cns::NAMESPACE, b.nsid), "Identify Namespace", &ns, sizeof ns);
      return BackingOwner{first_index_ + uint32_t(i), p.cfg.name, BackingMatch{b.nsid, nvme::lba_size(ns), *off}};
    }
  }
  return std::nullopt;
}

}  // namespace aisio::homi
