// Several GPUs (backends/gpus.hpp): the list, how files and queue pairs are spread over
// its entries, and what each physical GPU must hold. The list [0, 0] is how the
// multi-GPU code runs on a machine with one GPU: two slots, one device.
#include <gtest/gtest.h>

#include <numeric>

#include "backends/gpus.hpp"
#include "common/error.hpp"

namespace aisio::backends {
namespace {

TEST(Gpus, ParsesAListAndRefusesBadEntries) {
  EXPECT_EQ(parse_gpu_list(""), std::vector<int>{0});
  EXPECT_EQ(parse_gpu_list("", 3), std::vector<int>{3});
  EXPECT_EQ(parse_gpu_list("0,1"), (std::vector<int>{0, 1}));
  EXPECT_EQ(parse_gpu_list("0,0"), (std::vector<int>{0, 0}));
  EXPECT_EQ(format_gpu_list({0, 0}), "0,0");
  for (const char* bad : {"0,", ",1", "a", "-1", "0;1", "1,,2", "99999"}) {
    try {
      parse_gpu_list(bad);
      ADD_FAILURE() << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("--gpus"), std::string::npos) << e.what();
    }
  }
}

TEST(Gpus, FilesSpreadOverTwoSlotsOfOneGpuByBytes) {
  // Round robin by index would give {0, 2, 4} (14 bytes) and {1, 3} (11); by bytes,
  // largest first onto the lighter slot (ties: the lower): 12 | 10, 1, 1 | then the
  // last 1 onto slot 0 at 12 vs 12: 13 and 12 bytes.
  std::vector<uint64_t> sizes = {12, 10, 1, 1, 1};
  auto lists = spread_files(sizes, 2);
  ASSERT_EQ(lists.size(), 2u);
  EXPECT_EQ(lists[0], (std::vector<uint32_t>{0, 4}));
  EXPECT_EQ(lists[1], (std::vector<uint32_t>{1, 2, 3}));
  // Every file exactly once, whatever the count.
  std::vector<uint64_t> many(101);
  std::iota(many.begin(), many.end(), 1);
  for (size_t slots : {1, 2, 3, 7, 200}) {
    auto l = spread_files(many, slots);
    ASSERT_EQ(l.size(), slots);
    std::vector<int> seen(many.size(), 0);
    uint64_t lo = UINT64_MAX, hi = 0;
    for (auto& s : l) {
      uint64_t b = 0;
      for (size_t k = 0; k < s.size(); ++k) {
        ++seen[s[k]];
        b += many[s[k]];
        if (k) EXPECT_LT(s[k - 1], s[k]) << "a slot's files in input order";
      }
      lo = std::min(lo, b);
      hi = std::max(hi, b);
    }
    for (int n : seen) EXPECT_EQ(n, 1);
    if (slots <= many.size()) EXPECT_LE(hi - lo, 101u) << "no slot more than the largest file ahead";
  }
  EXPECT_THROW(spread_files(sizes, 0), Error);
}

TEST(Gpus, EachSlotHasItsOwnQueuesOnEveryDevice) {
  auto p = plan_queues(2, 3, 2);  // --gpus 0,0, three controllers, --queues 2
  EXPECT_EQ(p.per_slot, 6u);
  ASSERT_EQ(p.queues.size(), 12u);
  EXPECT_EQ(p.first, (std::vector<uint32_t>{0, 6}));
  for (uint32_t s = 0; s < 2; ++s)
    for (uint32_t i = 0; i < p.per_slot; ++i) {
      const auto& q = p.queues[p.first[s] + i];
      EXPECT_EQ(q.slot, s);
      EXPECT_EQ(q.device, i / 2);
      EXPECT_EQ(q.queue, i % 2);
    }
}

TEST(Gpus, SlotsOnOneGpuAddUpForResidency) {
  auto m = blocks_per_gpu({0, 0}, 6);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0], 12u);
  auto two = blocks_per_gpu({0, 1, 1}, 4);
  EXPECT_EQ(two[0], 4u);
  EXPECT_EQ(two[1], 8u);
}

}  // namespace
}  // namespace aisio::backends
