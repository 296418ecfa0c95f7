// sysfs-level PCIe code on a fake /sys tree.
#include <gtest/gtest.h>

#include "common/error.hpp"
#include "common/expect_error.hpp"
#include "pcie/fake_sysfs.hpp"
#include "pcie/sysfs.hpp"
#include "pcie/uio.hpp"

using aisio::test::expect_error;

using namespace aisio;
using namespace aisio::pcie;
using aisio::test::FakeSysfs;

TEST(PciBdf, Normalizes) {
  EXPECT_EQ(normalize_bdf("0000:01:00.0"), "0000:01:00.0");
  EXPECT_EQ(normalize_bdf("01:00.0"), "0000:01:00.0");
  EXPECT_EQ(normalize_bdf("1:0.1"), "0000:01:00.1");
  expect_error([] { normalize_bdf("10000:ab:1f.7"); }, Errc::invalid_argument, "not a PCI address: '10000:ab:1f.7'");
  EXPECT_EQ(normalize_bdf("0001:ab:1F.7"), "0001:ab:1f.7");
  expect_error([] { normalize_bdf("nvme0"); }, Errc::invalid_argument,
               "not a PCI address: 'nvme0' (want 0000:01:00.0)");
  expect_error([] { normalize_bdf("01:00"); }, Errc::invalid_argument,
               "not a PCI address: '01:00' (want 0000:01:00.0)");
  expect_error([] { normalize_bdf("01:20.0"); }, Errc::invalid_argument, "'01:20.0' (device <= 1f, function <= 7)");
  expect_error([] { normalize_bdf("01:00.8"); }, Errc::invalid_argument, "'01:00.8' (device <= 1f, function <= 7)");
}

TEST(PciDriver, ParsesNames) {
  EXPECT_EQ(parse_driver("uio"), Driver::uio_pci_generic);
  EXPECT_EQ(parse_driver("uio_pci_generic"), Driver::uio_pci_generic);
  EXPECT_EQ(parse_driver("vfio"), Driver::vfio_pci);
  EXPECT_EQ(parse_driver("vfio-pci"), Driver::vfio_pci);
  EXPECT_EQ(parse_driver("nvme"), Driver::nvme);
  EXPECT_EQ(parse_driver("kernel"), Driver::nvme);
  EXPECT_EQ(parse_driver("none"), Driver::none);
  expect_error([] { parse_driver("igb_uio"); }, Errc::invalid_argument,
               "unknown driver 'igb_uio' (want uio, vfio, nvme or none)");
  EXPECT_STREQ(driver_name(Driver::vfio_pci), "vfio-pci");
}

class FakeTree : public ::testing::Test {
 protected:
  void SetUp() override {
    fs.add({.bdf = "0000:00:1f.2", .vendor = "0x8086", .device = "0x2922", .cls = "0x010601", .driver = "ahci"});
    fs.add({.bdf = "0000:01:00.0", .driver = "nvme", .numa = 1, .totalvfs = 2, .numvfs = 0});
    fs.add({.bdf = "0000:01:00.1", .physfn = "0000:01:00.0"});
    fs.add({.bdf = "0000:02:00.0", .vendor = "0x144d", .device = "0xa80a", .driver = "uio_pci_generic",
            .iommu_group = "7"});
  }
  FakeSysfs fs;
  Sysfs sys{fs.root()};
};

TEST_F(FakeTree, EnumeratesNvmeFunctionsOnly) {
  auto all = enumerate(std::nullopt, sys);
  EXPECT_EQ(all.size(), 4u);
  auto v = enumerate_nvme(sys);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].bdf, "0000:01:00.0");
  EXPECT_EQ(v[0].vendor, 0x1b36);
  EXPECT_EQ(v[0].device, 0x0010);
  EXPECT_EQ(v[0].class_code, CLASS_NVME);
  EXPECT_EQ(v[0].driver, "nvme");
  EXPECT_EQ(v[0].numa_node, 1);
  EXPECT_TRUE(v[0].sriov_capable);
  EXPECT_EQ(v[0].sriov_totalvfs, 2u);
  EXPECT_EQ(v[0].sriov_numvfs, 0u);
  EXPECT_EQ(v[0].bar0_size, 16384u);
  EXPECT_TRUE(v[0].iommu_group.empty());
  EXPECT_EQ(v[0].subsystem_vendor, 0x1af4);
  EXPECT_FALSE(v[0].is_vf());

  EXPECT_EQ(v[1].bdf, "0000:01:00.1");
  EXPECT_TRUE(v[1].is_vf());
  EXPECT_EQ(v[1].physfn, "0000:01:00.0");
  EXPECT_EQ(v[1].driver, "");
  EXPECT_FALSE(v[1].sriov_capable);

  EXPECT_EQ(v[2].vendor, 0x144d);
  EXPECT_EQ(v[2].driver, "uio_pci_generic");
  EXPECT_EQ(v[2].iommu_group, "7");
  EXPECT_EQ(driver_of(v[2]), Driver::uio_pci_generic);
}

// Names starting with '.' in the devices directory are not functions (as readdir's
// "." and ".." are not): a hidden file there is skipped, not read as an address.
TEST_F(FakeTree, EnumerateSkipsHiddenEntries) {
  std::ofstream(fs.root() + "/bus/pci/devices/.keep") << "";
  EXPECT_EQ(enumerate(std::nullopt, sys).size(), 4u);
  EXPECT_EQ(enumerate_nvme(sys).size(), 3u);
}

TEST_F(FakeTree, ReadFunctionOfMissingDeviceThrows) {
  expect_error([&] { read_function("0000:09:00.0", sys); }, Errc::invalid_argument, "no PCI function 0000:09:00.0");
}

TEST_F(FakeTree, BindWritesUnbindOverrideAndProbe) {
  // The fake kernel never binds, so bind() reports the function still unbound, after
  // having written the three files in order.
  try {
    bind_driver("01:00.0", Driver::uio_pci_generic, sys, std::chrono::milliseconds(50));
    FAIL() << "bind should not succeed on a fake tree";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not bound to uio_pci_generic"), std::string::npos) << e.what();
  }
  EXPECT_EQ(fs.read("bus/pci/drivers/nvme/unbind"), "0000:01:00.0");
  EXPECT_EQ(fs.dev("0000:01:00.0", "driver_override"), "uio_pci_generic");
  EXPECT_EQ(fs.read("bus/pci/drivers_probe"), "0000:01:00.0");
}

TEST_F(FakeTree, BindToCurrentDriverIsNoop) {
  bind_driver("0000:02:00.0", Driver::uio_pci_generic, sys, std::chrono::milliseconds(50));
  EXPECT_EQ(fs.read("bus/pci/drivers/uio_pci_generic/unbind"), "");
  EXPECT_EQ(fs.read("bus/pci/drivers_probe"), "");
}

TEST_F(FakeTree, BindToUnloadedDriverSaysModprobe) {
  try {
    bind_driver("0000:01:00.0", Driver::vfio_pci, sys);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("modprobe vfio-pci"), std::string::npos) << e.what();
  }
  EXPECT_EQ(fs.read("bus/pci/drivers/nvme/unbind"), "");  // nothing was touched
}

TEST_F(FakeTree, VfioNeedsIommuGroup) {
  fs.touch("bus/pci/drivers/vfio-pci/bind");
  try {
    bind_driver("0000:01:00.0", Driver::vfio_pci, sys);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("intel_iommu=on"), std::string::npos) << e.what();
  }
}

TEST_F(FakeTree, UnbindAndNone) {
  bind_driver("0000:01:00.0", Driver::none, sys);
  EXPECT_EQ(fs.read("bus/pci/drivers/nvme/unbind"), "0000:01:00.0");
  EXPECT_EQ(fs.dev("0000:01:00.0", "driver_override"), "\n");
}

TEST_F(FakeTree, EnablesBusMasterInCommandRegister) {
  EXPECT_EQ(read_command("0000:01:00.0", sys), PCI_COMMAND_MEMORY);
  EXPECT_EQ(enable_bus_master("0000:01:00.0", sys), PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  std::string cfg = fs.dev("0000:01:00.0", "config");
  ASSERT_EQ(cfg.size(), 256u);
  EXPECT_EQ(uint8_t(cfg[4]), 0x06);
  EXPECT_EQ(uint8_t(cfg[5]), 0x00);
  EXPECT_EQ(uint8_t(cfg[0]), 0x36);  // the rest of config space is untouched
}

TEST_F(FakeTree, SriovNumvfs) {
  set_sriov_numvfs("0000:01:00.0", 2, sys);
  EXPECT_EQ(fs.dev("0000:01:00.0", "sriov_numvfs"), "2");
  expect_error([&] { set_sriov_numvfs("0000:01:00.0", 3, sys); }, Errc::invalid_argument,
               "0000:01:00.0 supports at most 2 VFs");
  expect_error([&] { set_sriov_numvfs("0000:02:00.0", 1, sys); }, Errc::not_supported,
               "0000:02:00.0 is not SR-IOV capable");
}

TEST_F(FakeTree, UioBarMapsResource0AndEnablesBusMaster) {
  // resource0 of the fake tree is an ordinary file: mmap works the same way.
  {
    FakeSysfs::write(fs.dev_path("0000:02:00.0") / "resource0", std::string("\x01\x02\x03\x04\x00\x04\x01\x00", 8) +
                                                                     std::string(16384 - 8, '\0'));
  }
  auto bar = UioBar::open("02:00.0", 0, sys);
  EXPECT_EQ(bar->describe(), "0000:02:00.0 BAR0 (uio)");
  EXPECT_EQ(bar->size(), 16384u);
  EXPECT_EQ(bar->read32(0), 0x04030201u);
  EXPECT_EQ(bar->read32(4), 0x00010400u);
  bar->write32(0x14, 0x00460001);
  EXPECT_EQ(bar->read32(0x14), 0x00460001u);
  EXPECT_EQ(read_command("0000:02:00.0", sys) & PCI_COMMAND_MASTER, PCI_COMMAND_MASTER);
}

TEST_F(FakeTree, UioBarRefusesKernelOwnedFunction) {
  try {
    UioBar::open("0000:01:00.0", 0, sys);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("aisio bind --driver uio 0000:01:00.0"), std::string::npos) << e.what();
  }
}

TEST(PciSysfs, RootFromEnvironment) {
  setenv("AISIO_SYSFS_ROOT", "/tmp/x/", 1);
  EXPECT_EQ(Sysfs().root(), "/tmp/x");
  unsetenv("AISIO_SYSFS_ROOT");
  EXPECT_EQ(Sysfs().root(), "/sys");
}
