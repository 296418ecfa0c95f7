// Per-thread block-index generators: a 64-bit LCG (Knuth's MMIX constants) for random
// I/O, scaled into the region with a multiply-high (no division on the hot path), and
// a wrapping cursor for sequential I/O. Deterministic for a given seed.
#pragma once
#include <cstdint>

namespace aisio::perf {

class Lcg {
 public:
  explicit Lcg(uint64_t seed = 1) : x_(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {}
  uint64_t next() {
    x_ = x_ * 6364136223846793005ull + 1442695040888963407ull;
    return x_;
  }
  // Uniform in [0, n): the high bits of the LCG (its low bits have short periods).
  uint64_t below(uint64_t n) { return uint64_t((unsigned __int128)next() * n >> 64); }
  // True with probability percent/100, from the 32 high bits.
  static uint64_t threshold(uint32_t percent) { return (uint64_t(percent) << 32) / 100; }
  bool chance(uint64_t thresh) { return (next() >> 32) < thresh; }

 private:
  uint64_t x_;
};

// Which block (of `blocks` blocks of bs bytes) the next I/O goes to, relative to the
// region start.
class BlockGen {
 public:
  BlockGen() = default;
  BlockGen(bool random, uint64_t blocks, uint64_t start, uint64_t seed)
      : random_(random), blocks_(blocks ? blocks : 1), cursor_(start % (blocks ? blocks : 1)), lcg_(seed) {}
  uint64_t next() {
    if (random_) return lcg_.below(blocks_);
    uint64_t b = cursor_;
    if (++cursor_ == blocks_) cursor_ = 0;
    return b;
  }
  uint64_t blocks() const { return blocks_; }
  Lcg& lcg() { return lcg_; }

 private:
  bool random_ = true;
  uint64_t blocks_ = 1;
  uint64_t cursor_ = 0;
  Lcg lcg_{1};
};

}  // namespace aisio::perf
