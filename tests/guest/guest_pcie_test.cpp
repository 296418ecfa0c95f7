// In-guest tests of the PCIe layer and DMA backends (no NVMe driver needed): they bind
// QEMU's NVMe function to uio_pci_generic / vfio-pci, map BAR0, and run a hand-rolled
// admin Identify whose data lands in hugepage or IOMMU-mapped memory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <set>

#include "common/error.hpp"
#include "guest_util.hpp"
#include "memory/hugepage_backend.hpp"
#include "memory/vfio_backend.hpp"
#include "pcie/device.hpp"
#include "pcie/sysfs.hpp"
#include "pcie/uio.hpp"
#include "pcie/vfio.hpp"
#include "spec/registers.hpp"

using namespace aisio;
using namespace aisio::guest;

namespace {
size_t reserved_hugepages() { return HugepageBackend::meminfo().total; }
bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

// Power state descriptor 0 (bytes 2048-2079): QEMU reports MP 0x09c4 (25 W), ENLAT 16 us,
// EXLAT 4 us. In a transfer that starts 2048 B before a page boundary these bytes are
// the first ones PRP2 carries.
void expect_qemu_psd0(const RawIdentify& id) {
  ASSERT_EQ(id.page.size(), 4096u);
  auto le = [&](size_t off, size_t n) {
    uint32_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint32_t(id.page[off + i]) << (8 * i);
    return v;
  };
  EXPECT_EQ(le(2048, 2), 0x09c4u) << "PSD0.MP";
  EXPECT_EQ(le(2048 + 4, 4), 0x10u) << "PSD0.ENLAT";
  EXPECT_EQ(le(2048 + 8, 4), 0x4u) << "PSD0.EXLAT";
}

// The data of an Identify whose buffer crosses a page (PRP1 + PRP2) must equal, byte for
// byte, the data of one that fits a page: a PRP2 half left at the 0xEE fill, or
// written elsewhere, shows here.
void expect_same_identify(const RawIdentify& one_page, const RawIdentify& straddled) {
  ASSERT_EQ(one_page.page.size(), 4096u);
  ASSERT_EQ(straddled.page.size(), 4096u);
  ASSERT_NE(straddled.data_iova2, 0u) << "the straddled transfer did not use PRP2";
  expect_qemu_psd0(straddled);
  for (size_t i = 0; i < 4096; ++i)
    ASSERT_EQ(straddled.page[i], one_page.page[i])
        << "byte " << i << " (" << (i < 2048 ? "PRP1" : "PRP2") << " side) differs from the one-page Identify";
}
}  // namespace

TEST(GuestEnumerate, FindsQemuNvme) {
  AISIO_GUEST_FUNCTIONS(fns);
  std::string c = config();
  size_t want = c == "multi" ? 3 : 1;
  ASSERT_EQ(fns.size(), want) << "config " << c;
  for (auto& f : fns) {
    EXPECT_EQ(f.class_code, pcie::CLASS_NVME);
    EXPECT_GE(f.bar0_size, 16384u) << f.bdf;
    std::printf("  %s %04x:%04x driver=%s numa=%d iommu_group=%s sriov=%u/%u bar0=%llu\n", f.bdf.c_str(), f.vendor,
                f.device, f.driver.c_str(), f.numa_node, f.iommu_group.c_str(), f.sriov_numvfs, f.sriov_totalvfs,
                (unsigned long long)f.bar0_size);
  }
  EXPECT_EQ(fns[0].bdf, "0000:01:00.0");
  if (c == "sriov") {
    EXPECT_TRUE(fns[0].sriov_capable);
    EXPECT_EQ(fns[0].sriov_totalvfs, 2u);
  } else {
    EXPECT_FALSE(fns[0].sriov_capable);
  }
  if (c == "vfio") EXPECT_FALSE(fns[0].iommu_group.empty());
  else EXPECT_TRUE(fns[0].iommu_group.empty());
}

TEST(GuestUio, BindMapBar0ReadCapVs) {
  AISIO_GUEST_FUNCTIONS(fns);
  if (config() == "vfio") GTEST_SKIP() << "uio_pci_generic with the IOMMU on: DMA would fault; see GuestVfio";
  for (auto& f : fns) {
    bind_or_fail(f.bdf, pcie::Driver::uio_pci_generic);
    auto bar = pcie::UioBar::open(f.bdf);
    EXPECT_EQ(bar->describe(), f.bdf + " BAR0 (uio)");
    nvme::Cap cap{bar->read64(nvme::reg::CAP)};
    nvme::Version vs{bar->read32(nvme::reg::VS)};
    std::printf("  %s CAP=%016llx VS=%u.%u MQES=%u TO=%u DSTRD=%u\n", f.bdf.c_str(), (unsigned long long)cap.raw,
                vs.major(), vs.minor(), cap.mqes(), cap.to(), cap.dstrd());
    EXPECT_EQ(vs.major(), 1u);
    EXPECT_GE(vs.minor(), 2u);
    EXPECT_GE(cap.mqes(), 31u);
    EXPECT_TRUE(cap.css() & nvme::CAP_CSS_NVM);
    EXPECT_GT(cap.to(), 0u);
    EXPECT_EQ(cap.mpsmin(), 0u);
    EXPECT_TRUE(pcie::read_command(f.bdf) & pcie::PCI_COMMAND_MASTER);
  }
}

TEST(GuestHugepage, BusAddressesArePhysicalAndContiguousPer2M) {
  AISIO_GUEST_FUNCTIONS(fns);
  ASSERT_GE(reserved_hugepages(), 8u);
  HugepageBackend b;
  DmaChunk c = b.grow(4 * HugepageBackend::PAGE_SIZE);
  ASSERT_EQ(c.page_shift, 21u);
  ASSERT_EQ(c.bus.size(), 4u);
  std::set<uint64_t> seen;
  for (size_t i = 0; i < c.bus.size(); ++i) {
    EXPECT_EQ(c.bus[i] % HugepageBackend::PAGE_SIZE, 0u);
    EXPECT_NE(c.bus[i], 0u);
    EXPECT_TRUE(seen.insert(c.bus[i]).second);
    // Every 4 KiB page of a hugepage is at the next physical 4 KiB.
    auto small = HugepageBackend::physical_addresses(c.va + i * HugepageBackend::PAGE_SIZE,
                                                     HugepageBackend::PAGE_SIZE, 4096);
    ASSERT_EQ(small.size(), 512u);
    for (size_t k = 0; k < small.size(); ++k) ASSERT_EQ(small[k], c.bus[i] + k * 4096) << "page " << i << "." << k;
  }
}

TEST(GuestHugepage, RawIdentifyIntoHugepagesAcross2M) {
  AISIO_GUEST_FUNCTIONS(fns);
  if (config() == "vfio") GTEST_SKIP() << "physical addresses are not bus addresses behind the IOMMU";
  auto& f = fns[0];
  bind_or_fail(f.bdf, pcie::Driver::uio_pci_generic);
  auto bar = pcie::UioBar::open(f.bdf);
  auto heap = DmaHeap::create(std::make_unique<HugepageBackend>(), 8u << 20);
  RawIdentify one_page = raw_identify(*bar, *heap, false);
  EXPECT_EQ(one_page.vid(), 0x1b36);
  EXPECT_EQ(one_page.serial(), "aisio0000");
  EXPECT_TRUE(contains(one_page.model(), "QEMU NVMe")) << one_page.model();
  EXPECT_EQ(one_page.data_iova2, 0u);
  expect_qemu_psd0(one_page);
  RawIdentify id = raw_identify(*bar, *heap, true);
  // The two halves are in different hugepages: PRP2 is not PRP1's page + 4 KiB
  // unless the kernel happened to hand out adjacent hugepages.
  std::printf("  PRP1=%#llx PRP2=%#llx\n", (unsigned long long)id.data_iova, (unsigned long long)id.data_iova2);
  expect_same_identify(one_page, id);
}

TEST(GuestHugepage, ExhaustionGivesTheFix) {
  AISIO_GUEST_FUNCTIONS(fns);
  size_t total = reserved_hugepages();
  ASSERT_GT(total, 0u);
  size_t ask = total + 16;
  HugepageBackend b;
  try {
    b.grow(ask * HugepageBackend::PAGE_SIZE);
    FAIL() << "asked for " << ask << " pages with " << total << " reserved";
  } catch (const Error& e) {
    std::printf("  error: %s\n", e.what());
    EXPECT_EQ(e.code(), Errc::no_memory);
    EXPECT_TRUE(contains(e.what(), std::to_string(ask) + " hugepage(s) of 2 MiB")) << e.what();
    EXPECT_TRUE(contains(e.what(), "> /proc/sys/vm/nr_hugepages")) << e.what();
    EXPECT_TRUE(contains(e.what(), "sysctl -w vm.nr_hugepages=")) << e.what();
  }
  // The failure leaked nothing: a small allocation still works and the pool is intact.
  EXPECT_EQ(HugepageBackend::meminfo().free, total);
  DmaChunk c = b.grow(1);
  EXPECT_EQ(c.bus.size(), 1u);
}

TEST(GuestHugepage, HugetlbfsDirectory) {
  AISIO_GUEST_FUNCTIONS(fns);
  HugepageOptions o;
  o.hugetlbfs_dir = "/dev/hugepages";
  HugepageBackend b(o);
  DmaChunk c = b.grow(3u << 20);
  EXPECT_EQ(c.bus.size(), 2u);
  EXPECT_EQ(c.bus[0] % HugepageBackend::PAGE_SIZE, 0u);
  HugepageOptions bad;
  bad.hugetlbfs_dir = "/nonexistent";
  try {
    HugepageBackend(bad).grow(1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "mount -t hugetlbfs")) << e.what();
  }
}

TEST(GuestVfio, BindMapBar0DmaThroughIommu) {
  AISIO_GUEST_FUNCTIONS(fns);
  auto& f = fns[0];
  if (f.iommu_group.empty()) {
    // Without an IOMMU the bind must fail with the fix, not half-bind.
    try {
      pcie::bind_driver(f.bdf, pcie::Driver::vfio_pci);
      FAIL() << "vfio bind without an IOMMU group should fail";
    } catch (const Error& e) {
      EXPECT_TRUE(contains(e.what(), "intel_iommu=on")) << e.what();
    }
    GTEST_SKIP() << "no IOMMU group (config " << config() << "): the vfio config tests this path";
  }
  bind_or_fail(f.bdf, pcie::Driver::vfio_pci);
  auto dev = pcie::VfioDevice::open(f.bdf);
  auto bar = dev->map_bar(0);
  EXPECT_EQ(bar->describe(), f.bdf + " BAR0 (vfio)");
  nvme::Version vs{bar->read32(nvme::reg::VS)};
  EXPECT_EQ(vs.major(), 1u);
  EXPECT_TRUE(dev->read_config16(4) & pcie::PCI_COMMAND_MASTER);
  auto ranges = dev->container()->iova_ranges();
  ASSERT_FALSE(ranges.empty());
  for (auto mem : {VfioBackendOptions::Memory::hugepages, VfioBackendOptions::Memory::anonymous}) {
    auto heap = DmaHeap::create(std::make_unique<VfioBackend>(dev->container(), VfioBackendOptions{mem}), 4u << 20);
    std::printf("  heap %s\n", heap->name().c_str());
    RawIdentify one_page = raw_identify(*bar, *heap, false);
    EXPECT_EQ(one_page.vid(), 0x1b36);
    EXPECT_EQ(one_page.serial(), "aisio0000");
    EXPECT_GE(one_page.data_iova, uint64_t(1) << 32);  // an IOVA from the container, not a physical address
    expect_qemu_psd0(one_page);
    RawIdentify id = raw_identify(*bar, *heap, true);
    EXPECT_GE(id.data_iova, uint64_t(1) << 32);
    EXPECT_GE(id.data_iova2, uint64_t(1) << 32);
    expect_same_identify(one_page, id);
  }
}

TEST(GuestVfio, OpenDeviceHelperPicksTheBackend) {
  AISIO_GUEST_FUNCTIONS(fns);
  auto& f = fns[0];
  pcie::OpenOptions o;
  o.bind = true;
  auto d = pcie::open_device(f.bdf, o);
  if (f.iommu_group.empty()) {
    EXPECT_EQ(d.driver, pcie::Driver::uio_pci_generic);
    EXPECT_EQ(d.dma->name(), "hugepage");
    EXPECT_EQ(d.vfio, nullptr);
  } else {
    EXPECT_EQ(d.driver, pcie::Driver::vfio_pci);
    EXPECT_TRUE(contains(d.dma->name(), "vfio " + f.bdf)) << d.dma->name();
  }
  RawIdentify id = raw_identify(*d.bar0, *d.dma);
  EXPECT_EQ(id.vid(), 0x1b36);
}
