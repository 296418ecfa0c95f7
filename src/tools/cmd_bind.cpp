// aisio bind --driver uio|vfio|nvme|none BDF...: hand NVMe functions to a user-space
// driver (uio_pci_generic, vfio-pci) or back to the kernel's nvme driver.
#include <fmt/format.h>

#include "common/error.hpp"
#include "pcie/sysfs.hpp"
#include "tools/command.hpp"

namespace aisio::tools {
namespace {

CommandRegistrar reg(11, [](CLI::App& app) {
  auto* cmd = app.add_subcommand("bind", "Bind PCI functions to uio_pci_generic, vfio-pci or the kernel nvme driver");
  auto driver = std::make_shared<std::string>();
  auto bdfs = std::make_shared<std::vector<std::string>>();
  auto numvfs = std::make_shared<int>(-1);
  auto timeout_ms = std::make_shared<int>(5000);
  cmd->add_option("--driver,-d", *driver, "uio (uio_pci_generic), vfio (vfio-pci), nvme (kernel) or none")->required();
  cmd->add_option("--sriov-numvfs", *numvfs, "Also set sriov_numvfs on each function (after binding)");
  cmd->add_option("--timeout-ms", *timeout_ms, "How long to wait for the driver to bind");
  cmd->add_option("bdf", *bdfs, "PCI address(es), e.g. 0000:01:00.0")->required();
  cmd->callback([=] {
    pcie::Driver d = pcie::parse_driver(*driver);
    for (auto& b : *bdfs) {
      std::string bdf = pcie::normalize_bdf(b);
      auto before = pcie::read_function(bdf);
      if (!before.is_nvme())
        fmt::print(stderr, "aisio bind: warning: {} is class {:06x}, not NVMe\n", bdf, before.class_code);
      pcie::bind_driver(bdf, d, {}, std::chrono::milliseconds(*timeout_ms));
      if (*numvfs >= 0) pcie::set_sriov_numvfs(bdf, uint32_t(*numvfs));
      auto after = pcie::read_function(bdf);
      fmt::print("{}: {} -> {}\n", bdf, before.driver.empty() ? "none" : before.driver,
                 after.driver.empty() ? "none" : after.driver);
    }
  });
});

}  // namespace
}  // namespace aisio::tools
