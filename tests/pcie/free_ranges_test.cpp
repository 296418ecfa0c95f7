// The free list shared by the DMA heap's chunks and the VFIO IOVA allocator: first fit
// at the asked alignment (counted at base + start), padding and tail kept free, and
// freed ranges merged with both neighbours.
#include <gtest/gtest.h>

#include "common/free_ranges.hpp"

namespace aisio {
namespace {

TEST(FreeRanges, FirstFitAlignedTakeAndCoalescingFree) {
  FreeRanges f;
  free_range(f, 0x1000, 0x10000);
  // Aligned at base + start: base 0x800 puts offset 0x1000 at 0x1800, so 4 KiB alignment
  // needs 0x800 of padding, which stays free.
  auto a = take_range(f, 0x1000, 0x1000, 0x800);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, 0x1800u);
  EXPECT_EQ(f, (FreeRanges{{0x1000, 0x800}, {0x2800, 0xE800}}));
  auto b = take_range(f, 0x2000, 0x2000);
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, 0x4000u);
  EXPECT_FALSE(take_range(f, 0x20000, 1));  // nothing holds it; the list is unchanged
  EXPECT_EQ(f, (FreeRanges{{0x1000, 0x800}, {0x2800, 0x1800}, {0x6000, 0xB000}}));
  free_range(f, *a, 0x1000);  // merges with the padding before and the range after
  EXPECT_EQ(f, (FreeRanges{{0x1000, 0x3000}, {0x6000, 0xB000}}));
  free_range(f, *b, 0x2000);  // fills the hole: one range again
  EXPECT_EQ(f, (FreeRanges{{0x1000, 0x10000}}));
}

}  // namespace
}  // namespace aisio
