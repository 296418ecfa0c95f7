// Which resolver a PCIe controller gets: driver x IOMMU (a fake /sys) x modules present
// (a fake kernel), and the message for every combination that cannot work.
#include <gtest/gtest.h>

#include "common/error.hpp"
#include "common/expect_error.hpp"
#include "p2p/choose.hpp"
#include "p2p/dmabuf_import.hpp"
#include "p2p/fake_kernel.hpp"
#include "p2p/iommu_map_pa.hpp"
#include "pcie/fake_sysfs.hpp"

using aisio::test::expect_error;

using namespace aisio;
using namespace aisio::p2p;
using aisio::test::FakeKernel;
using aisio::test::FakeSysfs;

namespace {

const std::string kBdf = "0000:01:00.0";

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

class NullSpace final : public IovaMapper {
 public:
  uint64_t map_dma(void*, size_t) override { return 0; }
  void unmap_dma(uint64_t, size_t) noexcept override {}
  uint64_t reserve_iova(size_t) override { return 0; }
  void release_iova(uint64_t, size_t) noexcept override {}
  std::string describe() const override { return "null"; }
};

struct Situation {
  FakeSysfs sys;
  std::shared_ptr<FakeKernel> k = std::make_shared<FakeKernel>();
  // The function, bound to `driver`, in IOMMU group 7 of `type` ("" = no group; "-" =
  // a group without a type file).
  Situation(const std::string& driver, const std::string& type) {
    FakeSysfs::Fn f{.bdf = kBdf};
    f.driver = driver;
    if (!type.empty()) f.iommu_group = "7";
    sys.add(f);
    if (!type.empty() && type != "-") FakeSysfs::write(std::filesystem::path(sys.root()) / "kernel/iommu_groups/7/type", type + "\n");
  }
  Environment env() const {
    Environment e;
    e.io = k;
    e.sys = pcie::Sysfs(sys.root());
    e.dmabuf_import_node = k->import_node;
    e.iommu_map_pa_node = k->map_node;
    return e;
  }
  PcieTarget target(pcie::Driver d) const {
    PcieTarget t{kBdf, d, nullptr};
    if (d == pcie::Driver::vfio_pci) t.vfio_space = std::make_shared<NullSpace>();
    return t;
  }
};

std::string refusal(const Situation& s, pcie::Driver d) {
  try {
    choose_route(s.target(d), s.env());
  } catch (const Error& e) {
    EXPECT_TRUE(e.code() == Errc::not_supported || e.code() == Errc::invalid_argument) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "a route was chosen";
  return "";
}

}  // namespace

TEST(IommuModeOf, ReadsGroupAndType) {
  EXPECT_EQ(iommu_mode(kBdf, pcie::Sysfs(Situation("uio_pci_generic", "").sys.root())).kind, IommuMode::off);
  Situation pt("vfio-pci", "identity");
  auto m = iommu_mode(kBdf, pcie::Sysfs(pt.sys.root()));
  EXPECT_EQ(m.kind, IommuMode::passthrough);
  EXPECT_EQ(m.group, "7");
  EXPECT_EQ(m.describe(), "IOMMU group 7, type identity (passthrough)");
  for (const char* t : {"DMA", "DMA-FQ"}) {
    Situation s("vfio-pci", t);
    auto mm = iommu_mode(kBdf, pcie::Sysfs(s.sys.root()));
    EXPECT_EQ(mm.kind, IommuMode::translated) << t;
    EXPECT_FALSE(mm.physical_addresses_valid());
    EXPECT_EQ(mm.type, t);
  }
  Situation old("vfio-pci", "-");
  EXPECT_EQ(iommu_mode(kBdf, pcie::Sysfs(old.sys.root())).kind, IommuMode::unknown);
}

TEST(ChooseRoute, UioWithoutTranslationUsesDmabufImport) {
  for (const char* type : {"", "identity"}) {
    Situation s("uio_pci_generic", type);
    s.k->map_present = false;  // not needed here
    RouteChoice c = choose_route(s.target(pcie::Driver::uio_pci_generic), s.env());
    EXPECT_EQ(c.route, Route::dmabuf_import) << type;
    EXPECT_TRUE(contains(c.why, "uio_pci_generic")) << c.why;
    auto r = make_resolver(s.target(pcie::Driver::uio_pci_generic), s.env());
    EXPECT_NE(dynamic_cast<DmabufImportResolver*>(r.get()), nullptr);
    EXPECT_TRUE(contains(r->name(), kBdf)) << r->name();
  }
}

TEST(ChooseRoute, UioUnderATranslatingIommuIsRefused) {
  Situation s("uio_pci_generic", "DMA-FQ");
  std::string m = refusal(s, pcie::Driver::uio_pci_generic);
  EXPECT_TRUE(contains(m, "uio_pci_generic while the IOMMU translates its DMA (IOMMU group 7, type DMA-FQ")) << m;
  EXPECT_TRUE(contains(m, "aisio bind --driver vfio " + kBdf)) << m;
  EXPECT_TRUE(contains(m, "iommu=pt")) << m;
}

TEST(ChooseRoute, UioWithAnUnknownDomainTypeIsRefused) {
  Situation s("uio_pci_generic", "-");
  std::string m = refusal(s, pcie::Driver::uio_pci_generic);
  EXPECT_TRUE(contains(m, "cannot tell whether the IOMMU translates")) << m;
  EXPECT_TRUE(contains(m, "/kernel/iommu_groups/7/type is unreadable")) << m;
}

TEST(ChooseRoute, VfioUsesIommuMapPaWhateverTheDefaultDomain) {
  for (const char* type : {"identity", "DMA", "DMA-FQ"}) {
    Situation s("vfio-pci", type);
    RouteChoice c = choose_route(s.target(pcie::Driver::vfio_pci), s.env());
    EXPECT_EQ(c.route, Route::iommu_map_pa) << type;
    auto r = make_resolver(s.target(pcie::Driver::vfio_pci), s.env());
    EXPECT_NE(dynamic_cast<IommuMapPaResolver*>(r.get()), nullptr) << type;
  }
}

TEST(ChooseRoute, NeitherModuleIsOneErrorNamingBothPackages) {
  for (auto [driver, d] : {std::pair{"uio_pci_generic", pcie::Driver::uio_pci_generic},
                           std::pair{"vfio-pci", pcie::Driver::vfio_pci}}) {
    Situation s(driver, "identity");
    s.k->import_present = s.k->map_present = false;
    std::string m = refusal(s, d);
    EXPECT_TRUE(contains(m, "GPU memory for " + kBdf)) << m;
    EXPECT_TRUE(contains(m, s.k->import_node + " (package dmabuf-import-dkms)")) << m;
    EXPECT_TRUE(contains(m, s.k->map_node + " (package iommu-map-pa-dkms)")) << m;
    EXPECT_TRUE(contains(m, "both absent")) << m;
  }
}

TEST(ChooseRoute, OneModuleMissingNamesThatOne) {
  {
    Situation s("vfio-pci", "DMA");
    s.k->map_present = false;
    std::string m = refusal(s, pcie::Driver::vfio_pci);
    EXPECT_TRUE(contains(m, "vfio-pci, whose IOMMU domain translates")) << m;
    EXPECT_TRUE(contains(m, "install iommu-map-pa-dkms")) << m;
    EXPECT_FALSE(contains(m, "dmabuf-import-dkms")) << m;
  }
  {
    Situation s("vfio-pci", "DMA");
    s.k->import_present = false;
    std::string m = refusal(s, pcie::Driver::vfio_pci);
    EXPECT_TRUE(contains(m, "install dmabuf-import-dkms")) << m;
  }
  {
    Situation s("uio_pci_generic", "");
    s.k->import_present = false;
    std::string m = refusal(s, pcie::Driver::uio_pci_generic);
    EXPECT_TRUE(contains(m, "install dmabuf-import-dkms")) << m;
    EXPECT_TRUE(contains(m, "serves vfio-pci only")) << m;
  }
}

TEST(ChooseRoute, OtherDriversAreRefused) {
  Situation s("nvme", "");
  std::string m = refusal(s, pcie::Driver::nvme);
  EXPECT_TRUE(contains(m, "bound to nvme, not to uio_pci_generic or vfio-pci")) << m;
  Situation v("vfio-pci", "DMA");
  PcieTarget t{kBdf, pcie::Driver::vfio_pci, nullptr};
  expect_error([&] { choose_route(t, v.env()); }, Errc::invalid_argument, "bound to vfio-pci but no vfio container was given");
}
