// PRP and SGL construction, checked entry by entry against NVMe 2.0 section 4.1.1.
#include <gtest/gtest.h>

#include "memory/dma.hpp"
#include "nvme/data_pointer.hpp"

using namespace aisio;
using namespace aisio::nvme;

namespace {
constexpr uint32_t kShift = 12;
constexpr size_t kPage = 4096;

struct Fixture : ::testing::Test {
  std::shared_ptr<DmaHeap> heap = DmaHeap::create(make_identity_backend(), 64u << 20);
  DmaBuffer data = heap->alloc(8u << 20, kPage);
  DmaBuffer lists = heap->alloc(4 * kPage, kPage);
  ListSpace space{&lists, 0, 4};
  Sqe sqe = cmd::read(1, 0, 1);

  // Walks the PRP entries of sqe and returns every page address it names.
  std::vector<uint64_t> walk(size_t len) {
    std::vector<uint64_t> out{sqe.prp1};
    size_t first = kPage - (sqe.prp1 & (kPage - 1));
    if (len <= first) {
      EXPECT_EQ(sqe.prp2, 0u);
      return out;
    }
    size_t remaining = len - first;
    if (remaining <= kPage) {
      out.push_back(sqe.prp2);
      return out;
    }
    auto* list = reinterpret_cast<uint64_t*>(uintptr_t(sqe.prp2));  // identity: bus == virtual
    size_t slot = 0;
    while (remaining > 0) {
      if (slot == kPage / 8 - 1 && remaining > kPage) {
        list = reinterpret_cast<uint64_t*>(uintptr_t(list[slot]));
        EXPECT_EQ(uintptr_t(list) % kPage, 0u) << "chained list page must be page aligned";
        slot = 0;
      }
      out.push_back(list[slot++]);
      remaining -= std::min(remaining, kPage);
    }
    return out;
  }
};
}  // namespace

TEST_F(Fixture, SinglePageNoPrp2) {
  ASSERT_EQ(build_prp(sqe, data, 0, kPage, kShift, space), DptrResult::ok);
  EXPECT_EQ(sqe.prp1, data.iova(0));
  EXPECT_EQ(sqe.prp2, 0u);
  EXPECT_EQ(psdt(sqe.flags), 0u);
}

TEST_F(Fixture, NonZeroFirstPageOffset) {
  ASSERT_EQ(build_prp(sqe, data, 512, kPage, kShift, space), DptrResult::ok);
  EXPECT_EQ(sqe.prp1, data.iova(512));
  EXPECT_EQ(sqe.prp2, data.iova(kPage)) << "second entry is the next page, offset 0";
}

TEST_F(Fixture, ExactlyOnePageCrossing) {
  ASSERT_EQ(build_prp(sqe, data, 4000, 200, kShift, space), DptrResult::ok);
  EXPECT_EQ(sqe.prp1, data.iova(4000));
  EXPECT_EQ(sqe.prp2, data.iova(kPage));
  // Ending exactly at the page boundary needs no PRP2.
  ASSERT_EQ(build_prp(sqe, data, 4000, 96, kShift, space), DptrResult::ok);
  EXPECT_EQ(sqe.prp2, 0u);
}

TEST_F(Fixture, ThreePagesUseAList) {
  ASSERT_EQ(build_prp(sqe, data, 0, 3 * kPage, kShift, space), DptrResult::ok);
  EXPECT_EQ(sqe.prp2, lists.iova(0));
  auto pages = walk(3 * kPage);
  ASSERT_EQ(pages.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(pages[i], data.iova(i * kPage));
}

TEST_F(Fixture, ListSpanningSeveralListPages) {
  // 1100 pages from a mid-page offset: 1100 list entries, 3 chained list pages.
  size_t off = 2048, len = 1100 * kPage;
  ASSERT_EQ(build_prp(sqe, data, off, len, kShift, space), DptrResult::ok);
  auto pages = walk(len);
  ASSERT_EQ(pages.size(), 1101u);
  EXPECT_EQ(pages[0], data.iova(off));
  for (size_t i = 1; i < pages.size(); ++i) ASSERT_EQ(pages[i], data.iova(i * kPage)) << "entry " << i;
  auto* first_list = lists.as<uint64_t>();
  EXPECT_EQ(first_list[511], lists.iova(kPage)) << "last slot chains to the second list page";
}

TEST_F(Fixture, ListExactlyFillingOnePage) {
  // first page + 512 entries: the 512th entry sits in the last slot, no chain.
  size_t len = kPage + 512 * kPage;
  ASSERT_EQ(build_prp(sqe, data, 0, len, kShift, space), DptrResult::ok);
  EXPECT_EQ(lists.as<uint64_t>()[511], data.iova(512 * kPage));
  auto pages = walk(len);
  EXPECT_EQ(pages.size(), 513u);
}

TEST_F(Fixture, TooLargeForListSpace) {
  ListSpace one{&lists, 0, 1};
  EXPECT_EQ(build_prp(sqe, data, 0, 600 * kPage, kShift, one), DptrResult::too_large);
}

TEST_F(Fixture, UnalignedBufferRejected) {
  EXPECT_EQ(build_prp(sqe, data, 1, 512, kShift, space), DptrResult::unaligned);
  EXPECT_EQ(build_prp(sqe, data, 6, 512, kShift, space), DptrResult::unaligned);
}

TEST_F(Fixture, SglContiguousIsOneDataBlock) {
  ASSERT_EQ(build_sgl(sqe, data, 100, 10000, space), DptrResult::ok);
  EXPECT_EQ(psdt(sqe.flags), 1u);
  auto* d = reinterpret_cast<const SglDescriptor*>(&sqe.prp1);
  EXPECT_EQ(d->addr, data.iova(100));
  EXPECT_EQ(d->length, 10000u);
  EXPECT_EQ(sgl::type(d->id), sgl::DATA_BLOCK);
}

namespace {
// A backend of 64 KiB pages whose bus addresses run backwards, so that consecutive
// pages are never bus-contiguous (like hugepages or GPU pages).
class ScatteredBackend final : public DmaBackend {
 public:
  DmaChunk grow(size_t min_bytes) override {
    auto inner = make_identity_backend()->grow(min_bytes);
    DmaChunk c;
    c.va = inner.va;
    c.len = inner.len;
    c.page_shift = 16;
    size_t n = (c.len + 0xFFFF) >> 16;
    for (size_t i = 0; i < n; ++i) c.bus.push_back(0x100000000ull + (n - i) * 0x20000);
    c.keepalive = inner.keepalive;
    return c;
  }
  std::string name() const override { return "scattered"; }
};
}  // namespace

TEST(DataPointer, SglDiscontiguousUsesLastSegment) {
  auto heap = DmaHeap::create(std::make_unique<ScatteredBackend>(), 1u << 20);
  auto buf = heap->alloc(256 * 1024, 65536);
  auto lists = DmaHeap::create(make_identity_backend())->alloc(4096, 4096);
  ListSpace space{&lists, 0, 1};
  Sqe s = cmd::read(1, 0, 1);
  ASSERT_EQ(build_sgl(s, buf, 1000, 3 * 65536, space), DptrResult::ok);
  auto* d = reinterpret_cast<const SglDescriptor*>(&s.prp1);
  EXPECT_EQ(sgl::type(d->id), sgl::LAST_SEGMENT);
  // 3 x 64 KiB starting inside a backend page touches 3 or 4 pages.
  size_t n = d->length / sizeof(SglDescriptor);
  ASSERT_GE(n, 3u);
  ASSERT_LE(n, 4u);
  auto* seg = lists.as<SglDescriptor>();
  size_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(seg[i].addr, buf.iova(1000 + total));
    EXPECT_EQ(sgl::type(seg[i].id), sgl::DATA_BLOCK);
    total += seg[i].length;
  }
  EXPECT_EQ(total, 3u * 65536);
  EXPECT_EQ(seg[0].length, buf.contiguous_from(1000));
}

TEST(DataPointer, PrpOverScatteredPagesTranslatesEachPage) {
  auto heap = DmaHeap::create(std::make_unique<ScatteredBackend>(), 1u << 20);
  auto buf = heap->alloc(256 * 1024, 65536);
  auto lists = DmaHeap::create(make_identity_backend())->alloc(4096, 4096);
  ListSpace space{&lists, 0, 1};
  Sqe s = cmd::read(1, 0, 1);
  ASSERT_EQ(build_prp(s, buf, 0, 40 * 4096, 12, space), DptrResult::ok);
  auto* list = lists.as<uint64_t>();
  for (int i = 1; i < 40; ++i) EXPECT_EQ(list[i - 1], buf.iova(size_t(i) * 4096)) << i;
}
