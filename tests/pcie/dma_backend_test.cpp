// HugepageBackend and VfioBackend on the host (no hugepages, no vfio): error texts,
// pagemap translation, and the vfio backend over a fake IOVA mapper.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "common/error.hpp"
#include "memory/hugepage_backend.hpp"
#include "memory/vfio_backend.hpp"

using namespace aisio;

namespace {
bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }
}  // namespace

TEST(HugepageBackend, ShortageMessageSaysHowManyAndHow) {
  auto m = HugepageBackend::meminfo();
  std::string s = HugepageBackend::shortage_message(5);
  EXPECT_TRUE(contains(s, "5 hugepage(s) of 2 MiB")) << s;
  EXPECT_TRUE(contains(s, "/proc/sys/vm/nr_hugepages")) << s;
  EXPECT_TRUE(contains(s, "sysctl -w vm.nr_hugepages=")) << s;
  size_t avail = m.free > m.reserved ? m.free - m.reserved : 0;
  if (avail < 5) {
    size_t want = m.total + (5 - avail);
    EXPECT_TRUE(contains(s, "echo " + std::to_string(want) + " > /proc/sys/vm/nr_hugepages")) << s;
  }
  std::string t = HugepageBackend::shortage_message(1, "/mnt/huge");
  EXPECT_TRUE(contains(t, "mount -t hugetlbfs -o pagesize=2M nodev /mnt/huge")) << t;
}

TEST(HugepageBackend, GrowWithoutReservedPagesThrowsTheFix) {
  auto m = HugepageBackend::meminfo();
  size_t avail = m.free > m.reserved ? m.free - m.reserved : 0;
  size_t pages = avail + 3;  // always more than there are
  HugepageBackend b;
  try {
    b.grow(pages * HugepageBackend::PAGE_SIZE);
    FAIL() << "grow of " << pages << " pages should fail with " << avail << " free";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::no_memory);
    EXPECT_TRUE(contains(e.what(), std::to_string(pages) + " hugepage(s)")) << e.what();
    EXPECT_TRUE(contains(e.what(), "nr_hugepages")) << e.what();
  }
}

TEST(HugepageBackend, PfnZeroMeansNoCapSysAdmin) {
  // /dev/zero reads as an all-zero pagemap: present bit clear... so fake "present, PFN
  // 0" with a file holding that entry for the page we ask about.
  long ps = sysconf(_SC_PAGESIZE);
  void* p = mmap(nullptr, size_t(ps), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  char path[] = "/tmp/aisio-pagemap.XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  uint64_t entry = uint64_t(1) << 63;  // present, PFN 0 (what an unprivileged reader sees)
  ASSERT_EQ(pwrite(fd, &entry, 8, off_t(uintptr_t(p) / uintptr_t(ps) * 8)), 8);
  close(fd);
  try {
    HugepageBackend::physical_addresses(p, size_t(ps), size_t(ps), path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "CAP_SYS_ADMIN")) << e.what();
    EXPECT_TRUE(contains(e.what(), "vfio")) << e.what();
  }
  // A real entry: present with PFN 0x1234.
  fd = open(path, O_WRONLY);
  entry = (uint64_t(1) << 63) | 0x1234;
  ASSERT_EQ(pwrite(fd, &entry, 8, off_t(uintptr_t(p) / uintptr_t(ps) * 8)), 8);
  close(fd);
  auto pa = HugepageBackend::physical_addresses(static_cast<uint8_t*>(p) + 16, 1, size_t(ps), path);
  ASSERT_EQ(pa.size(), 1u);
  EXPECT_EQ(pa[0], 0x1234u * uint64_t(ps) + 16);
  unlink(path);
  munmap(p, size_t(ps));
}

TEST(HugepageBackend, RealPagemapOnTheHost) {
  long ps = sysconf(_SC_PAGESIZE);
  void* p = mmap(nullptr, size_t(ps) * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  try {
    auto pa = HugepageBackend::physical_addresses(p, size_t(ps) * 4, size_t(ps));
    ASSERT_EQ(pa.size(), 4u);
    for (auto a : pa) EXPECT_NE(a, 0u);
  } catch (const Error& e) {
    munmap(p, size_t(ps) * 4);
    // The one expected reason: the kernel hides PFNs from a process without
    // CAP_SYS_ADMIN. Any other error (an unreadable pagemap, a populated page reported
    // not present) is a failure.
    if (e.code() != Errc::system || std::string(e.what()).find("without CAP_SYS_ADMIN") == std::string::npos)
      FAIL() << e.what();
    GTEST_SKIP() << "no physical addresses here: " << e.what();
  }
  munmap(p, size_t(ps) * 4);
}

namespace {
class FakeMapper : public IovaMapper {
 public:
  uint64_t map_dma(void* va, size_t len) override {
    EXPECT_EQ(uintptr_t(va) % 4096, 0u);
    EXPECT_EQ(len % 4096, 0u);
    uint64_t iova = next_;
    next_ += len;
    live[iova] = len;
    ++maps;
    return iova;
  }
  void unmap_dma(uint64_t iova, size_t len) noexcept override {
    EXPECT_EQ(live[iova], len);
    live.erase(iova);
    ++unmaps;
  }
  uint64_t reserve_iova(size_t) override { throw Error(Errc::not_supported, "VfioBackend never reserves"); }
  void release_iova(uint64_t, size_t) noexcept override { ADD_FAILURE() << "VfioBackend never reserves"; }
  std::string describe() const override { return "fake"; }
  std::map<uint64_t, size_t> live;
  int maps = 0, unmaps = 0;
  uint64_t next_ = uint64_t(1) << 32;
};
}  // namespace

TEST(VfioBackend, ChunksAreIovaContiguousAndUnmapped) {
  auto mapper = std::make_shared<FakeMapper>();
  {
    auto heap = DmaHeap::create(std::make_unique<VfioBackend>(mapper), 4u << 20);
    EXPECT_TRUE(contains(heap->name(), "vfio fake")) << heap->name();
    auto a = heap->alloc(4096);
    auto b = heap->alloc(3u << 20, 4096);  // bigger than nothing left in chunk 1 -> maybe new chunk
    EXPECT_GE(a.iova(), uint64_t(1) << 32);
    EXPECT_EQ(a.iova(100), a.iova() + 100);
    // A chunk is one IOVA range: the whole buffer is bus-contiguous.
    EXPECT_EQ(b.iova(b.size() - 1), b.iova() + b.size() - 1);
    EXPECT_GE(b.contiguous_from(0), b.size());
    std::memset(b.data(), 0x5a, b.size());
    EXPECT_GE(mapper->maps, 1);
  }
  EXPECT_EQ(mapper->unmaps, mapper->maps);
  EXPECT_TRUE(mapper->live.empty());
}

TEST(VfioBackend, HugepagesOnlyWithoutPagesSaysSo) {
  auto m = HugepageBackend::meminfo();
  if (m.free > 8) GTEST_SKIP() << "this host has hugepages";
  auto mapper = std::make_shared<FakeMapper>();
  VfioBackend b(mapper, {VfioBackendOptions::Memory::hugepages});
  try {
    b.grow(16u << 20);
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "nr_hugepages")) << e.what();
  }
  EXPECT_EQ(mapper->maps, 0);
}
