// Latency histogram: log-linear buckets (as HdrHistogram), exact below 2^kSubBits and
// within 1/2^kSubBits relative error above, fixed size, no allocation when recording.
// Values are in any unit (the benchmark records TSC ticks and converts at the end);
// count, min, max and the mean are exact.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

namespace aisio::perf {

class LatencyHistogram {
 public:
  static constexpr unsigned kSubBits = 7;
  static constexpr unsigned kSub = 1u << kSubBits;
  static constexpr unsigned kBuckets = (64 - kSubBits + 1) * kSub;

  LatencyHistogram() : counts_(kBuckets, 0) {}

  static unsigned index(uint64_t v) {
    if (v < kSub) return unsigned(v);
    unsigned e = 63u - unsigned(__builtin_clzll(v));  // e >= kSubBits
    unsigned shift = e - kSubBits;
    return (shift + 1) * kSub + unsigned(v >> shift) - kSub;
  }
  // Smallest and largest value of bucket i.
  static uint64_t lower(unsigned i) {
    if (i < 2 * kSub) return i;
    unsigned shift = i / kSub - 1;
    return uint64_t(i % kSub + kSub) << shift;
  }
  static uint64_t upper(unsigned i) {
    if (i < 2 * kSub) return i;
    unsigned shift = i / kSub - 1;
    return lower(i) + ((uint64_t(1) << shift) - 1);
  }

  void add(uint64_t v) {
    ++counts_[index(v)];
    ++n_;
    sum_ += v;
    if (v < min_) min_ = v;
    if (v > max_) max_ = v;
  }
  void merge(const LatencyHistogram& o);
  void clear();

  uint64_t count() const { return n_; }
  uint64_t min() const { return n_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return n_ ? double(sum_) / double(n_) : 0; }
  double stddev() const;
  // The p-th percentile (0 < p <= 100): the smallest recorded value v such that at least
  // p% of the samples are <= v; reported as the middle of its bucket, clamped to
  // [min, max]. 0 when empty.
  uint64_t percentile(double p) const;

 private:
  std::vector<uint64_t> counts_;
  uint64_t n_ = 0;
  unsigned __int128 sum_ = 0;
  uint64_t min_ = UINT64_MAX, max_ = 0;
};

}  // namespace aisio::perf
