#include <gtest/gtest.h>

#include "perf/latency.hpp"

namespace aisio::perf {
namespace {

TEST(PerfLatency, ExactForSmallValues) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.add(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 100u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
  EXPECT_EQ(h.percentile(50), 50u);
  EXPECT_EQ(h.percentile(99), 99u);
  EXPECT_EQ(h.percentile(99.9), 100u);
  EXPECT_EQ(h.percentile(100), 100u);
  EXPECT_EQ(h.percentile(1), 1u);
}

TEST(PerfLatency, KnownSamplesWithinBucketError) {
  LatencyHistogram h;
  // 1..100000 ns: the p-th percentile is p * 1000.
  for (uint64_t v = 1; v <= 100000; ++v) h.add(v);
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    double want = p * 1000;
    EXPECT_NEAR(double(h.percentile(p)), want, want / LatencyHistogram::kSub) << p;
  }
  EXPECT_DOUBLE_EQ(h.mean(), 50000.5);
  EXPECT_EQ(h.max(), 100000u);
}

TEST(PerfLatency, OutlierAndMerge) {
  LatencyHistogram a, b;
  for (int i = 0; i < 999; ++i) a.add(10000);  // 10 us
  b.add(5000000);                              // one 5 ms outlier
  a.merge(b);
  EXPECT_EQ(a.count(), 1000u);
  EXPECT_NEAR(double(a.percentile(50)), 10000, 10000.0 / LatencyHistogram::kSub);
  EXPECT_NEAR(double(a.percentile(99.9)), 10000, 10000.0 / LatencyHistogram::kSub);
  EXPECT_EQ(a.percentile(100), 5000000u);
  EXPECT_EQ(a.max(), 5000000u);
  EXPECT_NEAR(a.mean(), (999 * 10000.0 + 5000000) / 1000, 1e-6);
  a.clear();
  EXPECT_EQ(a.count(), 0u);
  EXPECT_EQ(a.percentile(99), 0u);
}

TEST(PerfLatency, BucketsAreContiguous) {
  for (uint64_t v : {0ull, 1ull, 127ull, 128ull, 129ull, 255ull, 256ull, 1000ull, 123456789ull, ~0ull}) {
    unsigned i = LatencyHistogram::index(v);
    ASSERT_LT(i, LatencyHistogram::kBuckets);
    EXPECT_LE(LatencyHistogram::lower(i), v);
    EXPECT_GE(LatencyHistogram::upper(i), v);
  }
  for (unsigned i = 1; i + 1 < LatencyHistogram::kBuckets; ++i)
    ASSERT_EQ(LatencyHistogram::upper(i - 1) + 1, LatencyHistogram::lower(i)) << i;
}

}  // namespace
}  // namespace aisio::perf
