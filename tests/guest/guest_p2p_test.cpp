// In-guest tests of src/p2p against a real kernel: the IOMMU mode read from the guest's
// sysfs, IOVA reservations for iommu_map_pa against the vfio container's own mappings
// (with DMA through them), and the resolver's refusal where the modules are absent.
#include <gtest/gtest.h>

#include <cstdio>
#include <vector>

#include "common/error.hpp"
#include "guest_util.hpp"
#include "memory/vfio_backend.hpp"
#include "p2p/choose.hpp"
#include "p2p/iommu_mode.hpp"
#include "pcie/vfio.hpp"

using namespace aisio;
using namespace aisio::guest;

namespace {
bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }
}  // namespace

TEST(GuestP2p, IommuModeFollowsTheConfig) {
  AISIO_GUEST_FUNCTIONS(fns);
  auto& f = fns[0];
  p2p::IommuMode m = p2p::iommu_mode(f.bdf);
  std::printf("  %s: %s\n", f.bdf.c_str(), m.describe().c_str());
  if (f.iommu_group.empty()) {
    EXPECT_EQ(m.kind, p2p::IommuMode::off);
    EXPECT_TRUE(m.physical_addresses_valid());
  } else {
    EXPECT_EQ(m.group, f.iommu_group);
    EXPECT_NE(m.kind, p2p::IommuMode::off);
    EXPECT_NE(m.kind, p2p::IommuMode::unknown) << "Linux 6.12 has the type file";
  }
}

TEST(GuestP2p, ReservedIovasNeverMeetVfioMappings) {
  AISIO_GUEST_FUNCTIONS(fns);
  auto& f = fns[0];
  if (f.iommu_group.empty()) GTEST_SKIP() << "no IOMMU group (config " << config() << "): the vfio config tests this";
  bind_or_fail(f.bdf, pcie::Driver::vfio_pci);
  auto dev = pcie::VfioDevice::open(f.bdf);
  auto bar = dev->map_bar(0);
  auto space = dev->container();
  struct Range { uint64_t start, len; };
  std::vector<Range> reserved;
  auto heap = DmaHeap::create(std::make_unique<VfioBackend>(space), 2u << 20);
  std::vector<DmaBuffer> bufs;
  // Interleave reservations with chunks VfioBackend maps, then check no two meet.
  for (int i = 0; i < 4; ++i) {
    reserved.push_back({space->reserve_iova(4u << 20), 4u << 20});
    bufs.push_back(heap->alloc(2u << 20, 4096));  // a whole chunk each
  }
  for (const auto& r : reserved) {
    EXPECT_EQ(r.start % (2u << 20), 0u);
    for (const auto& b : bufs) {
      uint64_t s = b.iova(), e = b.iova(b.size() - 1);
      EXPECT_TRUE(e < r.start || s >= r.start + r.len) << std::hex << "chunk " << s << " meets reservation " << r.start;
    }
    for (const auto& o : reserved) {
      if (&o == &r) continue;
      EXPECT_TRUE(o.start + o.len <= r.start || o.start >= r.start + r.len);
    }
  }
  // DMA through the container's mappings still works with the reservations in place.
  RawIdentify id = raw_identify(*bar, *heap);
  EXPECT_EQ(id.vid(), 0x1b36);
  for (const auto& r : reserved) space->release_iova(r.start, r.len);
  // Released ranges are usable again.
  uint64_t again = space->reserve_iova(4u << 20);
  space->release_iova(again, 4u << 20);
}

TEST(GuestP2p, ResolverNamesTheMissingModules) {
  AISIO_GUEST_FUNCTIONS(fns);
  auto& f = fns[0];
  p2p::Environment env;  // the guest's /dev and /sys: no GPU P2P modules
  bool vfio = !f.iommu_group.empty();
  p2p::PcieTarget t{f.bdf, vfio ? pcie::Driver::vfio_pci : pcie::Driver::uio_pci_generic, nullptr};
  try {
    p2p::make_resolver(t, env);
    FAIL() << "a resolver in a guest without the modules";
  } catch (const Error& e) {
    std::printf("  %s\n", e.what());
    EXPECT_EQ(e.code(), Errc::not_supported);
    EXPECT_TRUE(contains(e.what(), "dmabuf-import-dkms")) << e.what();
    EXPECT_TRUE(contains(e.what(), "iommu-map-pa-dkms")) << e.what();
  }
}
