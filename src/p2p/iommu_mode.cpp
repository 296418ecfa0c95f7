#include "p2p/iommu_mode.hpp"

#include <filesystem>

namespace aisio::p2p {

std::string IommuMode::describe() const {
  switch (kind) {
    case off: return "no IOMMU group (IOMMU off for it)";
    case passthrough: return "IOMMU group " + group + ", type " + type + " (passthrough)";
    case translated: return "IOMMU group " + group + ", type " + type + " (translating)";
    case unknown: break;
  }
  return "IOMMU group " + group + ", type unknown" + (type.empty() ? "" : " (" + type + ")");
}

IommuMode iommu_mode(const std::string& bdf, const pcie::Sysfs& sys) {
  namespace fs = std::filesystem;
  IommuMode m;
  std::error_code ec;
  fs::path groups = fs::path(sys.root()) / "kernel/iommu_groups";
  bool any_group = fs::is_directory(groups, ec) && !fs::is_empty(groups, ec);
  fs::path link = fs::path(sys.device_dir(bdf)) / "iommu_group";
  fs::path target = fs::read_symlink(link, ec);
  if (ec || !any_group) {
    // No group for this function: either no IOMMU at all, or one that does not cover it;
    // both leave its DMA untranslated.
    m.kind = IommuMode::off;
    return m;
  }
  m.group = target.filename().string();
  auto type = pcie::try_read_attr((groups / m.group / "type").string());
  if (!type) {
    m.kind = IommuMode::unknown;  // kernels before 5.11 have no type file
    return m;
  }
  m.type = *type;
  m.kind = m.type == "identity" ? IommuMode::passthrough : IommuMode::translated;
  return m;
}

}  // namespace aisio::p2p
