// aisio devices [--all] [--json]: the NVMe functions (PCI class 01:08:02) from sysfs.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "pcie/sysfs.hpp"
#include "tools/command.hpp"

namespace aisio::tools {
namespace {

std::string sriov_text(const pcie::PciFunction& f) {
  if (f.is_vf()) return "VF of " + f.physfn;
  if (!f.sriov_capable) return "-";
  return fmt::format("{}/{} VFs", f.sriov_numvfs, f.sriov_totalvfs);
}

CommandRegistrar reg(10, [](CLI::App& app) {
  auto* cmd = app.add_subcommand("devices", "List NVMe PCI functions (BDF, IDs, driver, NUMA node, SR-IOV)");
  auto json = std::make_shared<bool>(false);
  auto all = std::make_shared<bool>(false);
  auto root = std::make_shared<std::string>();
  cmd->add_flag("--json", *json, "Print JSON instead of a table");
  cmd->add_flag("--all", *all, "List every PCI function, not only NVMe");
  cmd->add_option("--sysfs", *root, "sysfs root (default /sys or $AISIO_SYSFS_ROOT)");
  cmd->callback([=] {
    pcie::Sysfs sys = root->empty() ? pcie::Sysfs() : pcie::Sysfs(*root);
    auto fns = *all ? pcie::enumerate(std::nullopt, sys) : pcie::enumerate_nvme(sys);
    if (*json) {
      auto arr = nlohmann::json::array();
      for (auto& f : fns) {
        nlohmann::json j = {
            {"bdf", f.bdf},
            {"vendor", fmt::format("{:04x}", f.vendor)},
            {"device", fmt::format("{:04x}", f.device)},
            {"class", fmt::format("{:06x}", f.class_code)},
            {"driver", f.driver},
            {"numa_node", f.numa_node},
            {"iommu_group", f.iommu_group.empty() ? nlohmann::json(nullptr) : nlohmann::json(std::stoi(f.iommu_group))},
            {"bar0_size", f.bar0_size},
            {"sriov", f.sriov_capable ? nlohmann::json{{"totalvfs", f.sriov_totalvfs}, {"numvfs", f.sriov_numvfs}}
                                      : nlohmann::json(nullptr)},
            {"physfn", f.physfn.empty() ? nlohmann::json(nullptr) : nlohmann::json(f.physfn)},
        };
        arr.push_back(std::move(j));
      }
      fmt::print("{}\n", arr.dump(2));
      return;
    }
    if (fns.empty()) {
      fmt::print("no {}PCI functions found under {}/bus/pci/devices\n", *all ? "" : "NVMe ", sys.root());
      return;
    }
    fmt::print("{:<13} {:<9} {:<16} {:>4} {:>5}  {}\n", "BDF", "ID", "DRIVER", "NUMA", "IOMMU", "SR-IOV");
    for (auto& f : fns)
      fmt::print("{:<13} {:04x}:{:04x} {:<16} {:>4} {:>5}  {}\n", f.bdf, f.vendor, f.device,
                 f.driver.empty() ? "-" : f.driver, f.numa_node, f.iommu_group.empty() ? "-" : f.iommu_group,
                 sriov_text(f));
  });
});

}  // namespace
}  // namespace aisio::tools
