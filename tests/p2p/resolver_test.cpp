// The two module-backed resolvers against a fake kernel (fake_kernel.hpp): the happy
// paths with the requests the modules receive, the lifetimes (descriptor kept while the
// range lives, detach/unmap on free, in order), and every error path with its message.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "common/error.hpp"
#include "p2p/dmabuf_import.hpp"
#include "p2p/iommu_map_pa.hpp"
#include "p2p/fake_kernel.hpp"

using namespace aisio;
using namespace aisio::p2p;
using aisio::test::FakeKernel;

namespace {

constexpr uint64_t MiB = 1ull << 20;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Runs f, which must throw Error(code); returns the message.
template <class F>
std::string error_of(F&& f, Errc code) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error thrown";
  return "";
}

struct Fixture {
  std::shared_ptr<FakeKernel> k = std::make_shared<FakeKernel>();
  int dmabuf = FakeKernel::fake_dmabuf();
  ~Fixture() { ::close(dmabuf); }
  DmabufImportResolver import_resolver() { return DmabufImportResolver("0000:01:00.0", k, k->import_node); }
};

// An IOVA space like the vfio container's: first fit from 4 GiB, records reservations.
class FakeSpace final : public IovaMapper {
 public:
  uint64_t map_dma(void*, size_t) override { throw Error(Errc::not_supported, "not used"); }
  void unmap_dma(uint64_t, size_t) noexcept override {}
  uint64_t reserve_iova(size_t len) override {
    if (exhausted) throw Error(Errc::no_memory, "VFIO IOVA space exhausted");
    uint64_t iova = next;
    next += len;
    reserved[iova] = len;
    return iova;
  }
  void release_iova(uint64_t iova, size_t len) noexcept override {
    EXPECT_EQ(reserved[iova], len);
    reserved.erase(iova);
    if (k) k->events.push_back("release");
  }
  std::string describe() const override { return "fake space"; }
  std::map<uint64_t, size_t> reserved;
  uint64_t next = 4ull << 30;
  bool exhausted = false;
  FakeKernel* k = nullptr;
};

}  // namespace

// ---- dmabuf_import ----------------------------------------------------------------------

TEST(DmabufImport, SegmentsBecomeThePageTableAndTheAttachmentLivesWithTheRange) {
  Fixture f;
  f.k->segments = {{0x38000000000, 2 * MiB}, {0x38000400000, 2 * MiB}};  // two pieces, not adjacent
  auto r = f.import_resolver();
  int attached;
  {
    ResolvedRange rr = r.resolve(0x7f0000000000, 4 * MiB, f.dmabuf);
    ASSERT_EQ(rr.bus.size(), 64u);
    EXPECT_EQ(rr.bus[0], 0x38000000000u);
    EXPECT_EQ(rr.bus[1], 0x38000010000u);
    EXPECT_EQ(rr.bus[31], 0x38000000000u + 31 * 65536);
    EXPECT_EQ(rr.bus[32], 0x38000400000u);
    EXPECT_EQ(rr.bus[63], 0x38000400000u + 31 * 65536);
    EXPECT_TRUE(contains(rr.how, "2 DMA segment(s)")) << rr.how;
    // ATTACH and GET_MAP went to one descriptor, which stays open with the attachment,
    // on a duplicate of the dma-buf fd that outlives the caller's copy.
    EXPECT_EQ(f.k->events, (std::vector<std::string>{"attach", "get_map"}));
    ASSERT_EQ(f.k->attachments.size(), 1u);
    attached = f.k->last_attached_dmabuf;
    EXPECT_NE(attached, f.dmabuf);
    EXPECT_EQ(f.k->open_fds.size(), 1u);
    EXPECT_TRUE(FakeKernel::fd_open(attached));
  }
  // Freed: DETACH of the same dma-buf on the same descriptor, then the descriptor closed.
  EXPECT_EQ(f.k->events, (std::vector<std::string>{"attach", "get_map", "detach", "close import"}));
  EXPECT_TRUE(f.k->attachments.empty());
  EXPECT_TRUE(f.k->open_fds.empty());
  EXPECT_FALSE(FakeKernel::fd_open(attached));
  EXPECT_TRUE(FakeKernel::fd_open(f.dmabuf));  // the caller's own descriptor is the caller's
}

TEST(DmabufImport, NodeAbsentNamesThePackage) {
  Fixture f;
  f.k->import_present = false;
  auto r = f.import_resolver();
  std::string m = error_of([&] { r.resolve(0, 2 * MiB, f.dmabuf); }, Errc::not_supported);
  EXPECT_TRUE(contains(m, f.k->import_node + " is not there")) << m;
  EXPECT_TRUE(contains(m, "dmabuf-import-dkms")) << m;
  EXPECT_TRUE(contains(m, "dmabuf_import kernel module is not loaded")) << m;
}

TEST(DmabufImport, NodeAbsentOnTheRealSystemCallsToo) {
  // The real system-call path, on a node path that cannot exist.
  auto dir = std::filesystem::temp_directory_path() / "aisio-no-such-dir";
  std::string node = (dir / "dmabuf_import").string();
  DmabufImportResolver r("0000:01:00.0", system_device_io(), node);
  int fd = FakeKernel::fake_dmabuf();
  std::string m = error_of([&] { r.resolve(0, 2 * MiB, fd); }, Errc::not_supported);
  ::close(fd);
  EXPECT_TRUE(contains(m, node + " is not there (No such file or directory)")) << m;
  EXPECT_TRUE(contains(m, "dmabuf-import-dkms")) << m;
}

TEST(DmabufImport, OpenRefusedSaysWhoMayOpenIt) {
  Fixture f;
  f.k->open_errno = EACCES;
  auto r = f.import_resolver();
  std::string m = error_of([&] { r.resolve(0, 2 * MiB, f.dmabuf); }, Errc::system);
  EXPECT_TRUE(contains(m, "open " + f.k->import_node + ": Permission denied")) << m;
  EXPECT_TRUE(contains(m, "root")) << m;
}

TEST(DmabufImport, AttachRefusedIsReportedAndLeavesNothingOpen) {
  Fixture f;
  f.k->segments = {{0x1000000000, 2 * MiB}};
  f.k->attach_errno = EOPNOTSUPP;
  auto r = f.import_resolver();
  std::string m = error_of([&] { r.resolve(0, 2 * MiB, f.dmabuf); }, Errc::system);
  EXPECT_TRUE(contains(m, "DMABUF_IMPORT_ATTACH")) << m;
  EXPECT_TRUE(contains(m, std::strerror(EOPNOTSUPP))) << m;
  EXPECT_TRUE(f.k->open_fds.empty());
  EXPECT_EQ(f.k->events, (std::vector<std::string>{"attach", "close import"}));  // nothing to detach
}

TEST(DmabufImport, GetMapRefusedDetaches) {
  Fixture f;
  f.k->segments = {{0x1000000000, 2 * MiB}};
  f.k->get_map_errno = EIO;
  auto r = f.import_resolver();
  std::string m = error_of([&] { r.resolve(0, 2 * MiB, f.dmabuf); }, Errc::system);
  EXPECT_TRUE(contains(m, "DMABUF_IMPORT_GET_MAP")) << m;
  EXPECT_TRUE(contains(m, std::strerror(EIO))) << m;
  EXPECT_EQ(f.k->events, (std::vector<std::string>{"attach", "get_map", "detach", "close import"}));
  EXPECT_TRUE(f.k->attachments.empty());
}

TEST(DmabufImport, SegmentsThatDoNotCoverTheBufferAreRefused) {
  Fixture f;
  f.k->segments = {{0x1000000000, 2 * MiB}, {0x1000400000, 1 * MiB}};  // 3 MiB of a 4 MiB buffer
  auto r = f.import_resolver();
  std::string m = error_of([&] { r.resolve(0, 4 * MiB, f.dmabuf); }, Errc::protocol);
  EXPECT_TRUE(contains(m, "cover 3145728 of the buffer's 4194304 bytes")) << m;
  EXPECT_TRUE(contains(m, "16 of its 64 KiB pages have no bus address")) << m;
  EXPECT_TRUE(f.k->attachments.empty());  // detached on the way out
  EXPECT_TRUE(f.k->open_fds.empty());
}

TEST(DmabufImport, UnalignedSegmentIsRefused) {
  Fixture f;
  f.k->segments = {{0x1000001000, 2 * MiB}};
  auto r = f.import_resolver();
  std::string m = error_of([&] { r.resolve(0, 2 * MiB, f.dmabuf); }, Errc::protocol);
  EXPECT_TRUE(contains(m, "0x1000001000+0x200000 is not aligned to 64 KiB pages")) << m;
}

TEST(DmabufImport, ZeroSegmentsAndOverlongAnswersAreRefused) {
  Fixture f;
  auto r = f.import_resolver();
  std::string m = error_of([&] { r.resolve(0, 2 * MiB, f.dmabuf); }, Errc::protocol);
  EXPECT_TRUE(contains(m, "0 DMA segments")) << m;
  f.k->segments = {{0x1000000000, 2 * MiB}};
  f.k->get_map_extra = 5;
  m = error_of([&] { r.resolve(0, 2 * MiB, f.dmabuf); }, Errc::protocol);
  EXPECT_TRUE(contains(m, "reported 6 segments, more than the 1")) << m;
  EXPECT_TRUE(f.k->attachments.empty());
}

TEST(DmabufImport, NoDmabufNoImport) {
  Fixture f;
  auto r = f.import_resolver();
  std::string m = error_of([&] { r.resolve(0, 2 * MiB, -1); }, Errc::not_supported);
  EXPECT_TRUE(contains(m, "dma-buf")) << m;
  EXPECT_TRUE(f.k->events.empty());
}

// ---- iommu_map_pa -----------------------------------------------------------------------

namespace {
struct MapFixture : Fixture {
  std::shared_ptr<FakeSpace> space = std::make_shared<FakeSpace>();
  MapFixture() { space->k = k.get(); }
  IommuMapPaResolver resolver() { return IommuMapPaResolver("0000:5e:00.0", space, k, k->import_node, k->map_node); }
};
}  // namespace

TEST(IommuMapPa, MapsThePhysicalPagesAtAReservedIova) {
  MapFixture f;
  f.k->segments = {{0x38000000000, 2 * MiB}, {0x38000800000, 2 * MiB}};
  auto r = f.resolver();
  {
    ResolvedRange rr = r.resolve(0, 4 * MiB, f.dmabuf);
    ASSERT_EQ(f.space->reserved.size(), 1u);
    uint64_t iova = f.space->reserved.begin()->first;
    EXPECT_EQ(f.space->reserved.begin()->second, 4 * MiB);
    ASSERT_EQ(f.k->mappings.size(), 1u);
    const auto& m = f.k->mappings.begin()->second;
    EXPECT_EQ(m.bdf, "0000:5e:00.0");
    EXPECT_EQ(m.iova, iova);
    EXPECT_EQ(m.page_size, 2 * MiB);  // every segment is 2 MiB aligned: the coarsest page
    EXPECT_EQ(m.phys, (std::vector<uint64_t>{0x38000000000, 0x38000800000}));
    EXPECT_EQ(m.prot, 3u);
    EXPECT_EQ(m.dmabuf_fd, f.k->last_attached_dmabuf);  // the attached duplicate: a live reference
    // The controller is given IOVAs, not the physical addresses.
    ASSERT_EQ(rr.bus.size(), 64u);
    for (size_t i = 0; i < rr.bus.size(); ++i) ASSERT_EQ(rr.bus[i], iova + i * 65536) << i;
    EXPECT_EQ(f.k->attachments.size(), 1u);
  }
  // Freed: the translation goes, then the IOVA range, then the attachment.
  EXPECT_EQ(f.k->events, (std::vector<std::string>{"attach", "get_map", "map", "unmap", "release", "detach",
                                                   "close import"}));
  EXPECT_TRUE(f.k->mappings.empty());
  EXPECT_TRUE(f.space->reserved.empty());
  EXPECT_TRUE(f.k->attachments.empty());
}

TEST(IommuMapPa, FinerSegmentsGiveFinerPages) {
  MapFixture f;
  f.k->segments = {{0x38000010000, 1 * MiB}, {0x38000200000, 1 * MiB}};  // 64 KiB aligned only
  auto r = f.resolver();
  ResolvedRange rr = r.resolve(0, 2 * MiB, f.dmabuf);
  const auto& m = f.k->mappings.begin()->second;
  EXPECT_EQ(m.page_size, 65536u);
  ASSERT_EQ(m.phys.size(), 32u);
  EXPECT_EQ(m.phys[0], 0x38000010000u);
  EXPECT_EQ(m.phys[15], 0x38000010000u + 15 * 65536);
  EXPECT_EQ(m.phys[16], 0x38000200000u);
}

TEST(IommuMapPa, TwoRangesGetDisjointIovas) {
  MapFixture f;
  f.k->segments = {{0x38000000000, 2 * MiB}};
  auto r = f.resolver();
  ResolvedRange a = r.resolve(0, 2 * MiB, f.dmabuf);
  ResolvedRange b = r.resolve(0, 2 * MiB, f.dmabuf);
  EXPECT_EQ(f.space->reserved.size(), 2u);
  EXPECT_GE(std::max(a.bus[0], b.bus[0]) - std::min(a.bus[0], b.bus[0]), 2 * MiB);
  EXPECT_EQ(f.k->mappings.size(), 2u);
  EXPECT_EQ(f.k->open_fds.size(), 3u);  // one iommu_map_pa descriptor, one import descriptor per range
}

TEST(IommuMapPa, MapRefusedGivesTheIovaBackAndDetaches) {
  MapFixture f;
  f.k->segments = {{0x38000000000, 2 * MiB}};
  f.k->map_errno = EADDRINUSE;
  auto r = f.resolver();
  std::string m = error_of([&] { r.resolve(0, 2 * MiB, f.dmabuf); }, Errc::system);
  EXPECT_TRUE(contains(m, "IOMMU_MAP_PA of 1 x 2048 KiB for 0000:5e:00.0 at IOVA 0x100000000")) << m;
  EXPECT_TRUE(contains(m, "already maps")) << m;
  EXPECT_TRUE(f.space->reserved.empty());
  EXPECT_TRUE(f.k->attachments.empty());
}

TEST(IommuMapPa, UnmapRefusedKeepsTheIovaReserved) {
  MapFixture f;
  f.k->segments = {{0x38000000000, 2 * MiB}};
  auto r = f.resolver();
  { ResolvedRange rr = r.resolve(0, 2 * MiB, f.dmabuf); f.k->unmap_errno = EBUSY; }
  EXPECT_EQ(f.space->reserved.size(), 1u);  // reusing it could alias a live translation
  EXPECT_TRUE(f.k->attachments.empty());
}

TEST(IommuMapPa, NodeAbsentAndExhaustedSpace) {
  MapFixture f;
  f.k->segments = {{0x38000000000, 2 * MiB}};
  f.k->map_present = false;
  auto r = f.resolver();
  std::string m = error_of([&] { r.resolve(0, 2 * MiB, f.dmabuf); }, Errc::not_supported);
  EXPECT_TRUE(contains(m, f.k->map_node + " is not there")) << m;
  EXPECT_TRUE(contains(m, "iommu-map-pa-dkms")) << m;
  f.k->map_present = true;
  f.space->exhausted = true;
  auto r2 = f.resolver();
  m = error_of([&] { r2.resolve(0, 2 * MiB, f.dmabuf); }, Errc::no_memory);
  EXPECT_TRUE(f.k->attachments.empty());
  EXPECT_TRUE(f.k->mappings.empty());
}

TEST(IommuMapPa, CoarsestPage) {
  EXPECT_EQ(coarsest_page({{0x200000, 0x400000}}, 0x400000), 2 * MiB);
  EXPECT_EQ(coarsest_page({{0x100000, 0x100000}}, 0x100000), 1 * MiB);
  EXPECT_EQ(coarsest_page({{0x10000, 0x200000}}, 0x200000), 65536u);
  EXPECT_EQ(coarsest_page({{0x200000, 0x200000}}, 0x30000), 65536u);
}
