// aisio sriov status BDF [--admin-device /dev/nvmeN]: an SR-IOV capable NVMe PF as the
// kernel and the controller see it: sriov_totalvfs/numvfs/drivers_autoprobe, the VFs
// and their drivers, Identify Primary Controller Capabilities (CNS 14h) and the
// Secondary Controller List (CNS 15h), read through the kernel's admin passthrough on
// the PF's /dev/nvmeN (the PF stays with the kernel nvme driver; needs root).
#include <fmt/format.h>

#include "common/error.hpp"
#include "homi/sriov_pf.hpp"
#include "pcie/sriov.hpp"
#include "pcie/sysfs.hpp"
#include "tools/command.hpp"

namespace aisio::tools {
namespace {

void status(const std::string& bdf_in, const std::string& admin_device) {
  std::string bdf = pcie::normalize_bdf(bdf_in);
  pcie::PciFunction f = pcie::read_function(bdf);
  if (!f.sriov_capable) throw Error(Errc::not_supported, bdf + " is not SR-IOV capable (no sriov_totalvfs)");
  fmt::print("{}: driver {}, sriov_totalvfs {}, sriov_numvfs {}, sriov_drivers_autoprobe {}\n", bdf,
             f.driver.empty() ? "none" : f.driver, f.sriov_totalvfs, f.sriov_numvfs,
             pcie::sriov_autoprobe(bdf) ? 1 : 0);
  for (uint16_t v = 1; v <= f.sriov_numvfs; ++v) {
    std::string vf = pcie::vf_address(bdf, v);
    std::string drv = pcie::read_function(vf).driver;
    fmt::print("  VF {} {}: driver {}\n", v, vf, drv.empty() ? "none" : drv);
  }
  std::string dev = admin_device.empty() ? pcie::nvme_char_device(bdf) : admin_device;
  homi::KernelAdminChannel admin(dev);
  homi::PrimaryView pv = homi::read_primary(admin);
  const auto& c = pv.caps;
  fmt::print("primary controller {} (via {}): CRT {:#x}\n", c.cntlid, dev, c.crt);
  fmt::print("  VQ: {} flexible (VQFRT), {} assigned to secondaries, {} allocated to the primary, {} private, "
             "at most {} per secondary (VQFRSM), granularity {}\n",
             c.vqfrt, c.vqrfa, c.vqrfap, c.vqprt, c.vqfrsm, c.vqgran);
  fmt::print("  VI: {} flexible (VIFRT), {} assigned to secondaries, {} allocated to the primary, {} private, "
             "at most {} per secondary (VIFRSM), granularity {}\n",
             c.vifrt, c.virfa, c.virfap, c.viprt, c.vifrsm, c.vigran);
  fmt::print("secondary controllers: {}\n", pv.secondaries.size());
  for (auto& s : pv.secondaries)
    fmt::print("  SCID {:>3}  VF {:>3}  {:<7}  VQ {:>3}  VI {:>3}\n", s.scid, s.vfn, (s.scs & 1) ? "online" : "offline",
               s.nvq, s.nvi);
}

CommandRegistrar reg(12, [](CLI::App& app) {
  auto* cmd = app.add_subcommand("sriov", "SR-IOV physical functions: limits and secondary controllers");
  cmd->require_subcommand(1);
  auto* st = cmd->add_subcommand("status", "Primary controller capabilities, secondary controllers and VFs of a PF");
  auto bdf = std::make_shared<std::string>();
  auto dev = std::make_shared<std::string>();
  st->add_option("bdf", *bdf, "the PF's PCI address (bound to the kernel nvme driver)")->required();
  st->add_option("--admin-device", *dev, "the PF's nvme character device (default: found in sysfs)");
  st->callback([=] { status(*bdf, *dev); });
});

}  // namespace
}  // namespace aisio::tools
