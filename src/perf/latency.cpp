#include "perf/latency.hpp"

#include <algorithm>
#include <cmath>

namespace aisio::perf {

void LatencyHistogram::merge(const LatencyHistogram& o) {
  for (unsigned i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
  n_ += o.n_;
  sum_ += o.sum_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
}

void LatencyHistogram::clear() {
  std::fill(counts_.begin(), counts_.end(), 0);
  n_ = 0;
  sum_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
}

double LatencyHistogram::stddev() const {
  if (n_ < 2) return 0;
  double m = mean(), acc = 0;
  for (unsigned i = 0; i < kBuckets; ++i) {
    if (!counts_[i]) continue;
    double mid = (double(lower(i)) + double(upper(i))) / 2;
    acc += double(counts_[i]) * (mid - m) * (mid - m);
  }
  return std::sqrt(acc / double(n_ - 1));
}

uint64_t LatencyHistogram::percentile(double p) const {
  if (n_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  uint64_t rank = uint64_t(std::ceil(p / 100.0 * double(n_) - 1e-9));
  if (rank == 0) rank = 1;
  if (rank >= n_) return max_;  // the largest sample is known exactly
  uint64_t cum = 0;
  for (unsigned i = 0; i < kBuckets; ++i) {
    cum += counts_[i];
    if (cum >= rank) {
      uint64_t mid = lower(i) + (upper(i) - lower(i)) / 2;
      return std::clamp(mid, min(), max_);
    }
  }
  return max_;
}

}  // namespace aisio::perf
