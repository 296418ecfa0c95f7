// The bytes of a generated data set: a pure function of (file key, offset), so the
// verifier can regenerate any byte range of any file without reading it (the source
// of truth when a hash does not match), and the same seed always gives the same data.
//
// Byte o of a file with key K is byte (o % 8) of the little-endian 64-bit word
// splitmix64(K + (o / 8 + 1) * 0x9E3779B97F4A7C15). Holes and unwritten ranges of
// sparse files are zeros (the manifest lists the data segments).
#pragma once
#include <cstddef>
#include <cstdint>

namespace aisio::fil {

inline uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Content key of file `index` of a data set generated with `seed`.
inline uint64_t file_key(uint64_t seed, uint64_t index) {
  return splitmix64(splitmix64(seed ^ 0x66696c2d64617461ull) + index * 0x9E3779B97F4A7C15ull);
}

// Writes the content bytes [off, off + n) of the file with key `key` to out.
void fill_content(uint64_t key, uint64_t off, uint8_t* out, size_t n);

// A small deterministic generator for the data set's layout (independent of the C++
// library's distributions, so a seed means the same data set everywhere).
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() { return splitmix64(s_ += 0x9E3779B97F4A7C15ull); }
  uint64_t below(uint64_t n) { return n ? uint64_t((unsigned __int128)next() * n >> 64) : 0; }  // [0, n)
  uint64_t range(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }                  // [lo, hi]
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }                                  // [0, 1)
  double normal();                                                                                // N(0, 1)

 private:
  uint64_t s_;
};

}  // namespace aisio::fil
