#include "fil/content.hpp"

#include <cmath>
#include <cstring>

namespace aisio::fil {

void fill_content(uint64_t key, uint64_t off, uint8_t* out, size_t n) {
  constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;
  uint64_t w = off / 8;
  size_t pos = 0;
  // Leading partial word.
  if (off % 8) {
    uint64_t v = splitmix64(key + (w + 1) * kGolden);
    for (size_t b = off % 8; b < 8 && pos < n; ++b) out[pos++] = uint8_t(v >> (8 * b));
    ++w;
  }
  // Whole words.
  for (; pos + 8 <= n; pos += 8, ++w) {
    uint64_t v = splitmix64(key + (w + 1) * kGolden);
    uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = uint8_t(v >> (8 * i));
    std::memcpy(out + pos, b, 8);
  }
  // Trailing partial word.
  if (pos < n) {
    uint64_t v = splitmix64(key + (w + 1) * kGolden);
    for (size_t b = 0; pos < n; ++b) out[pos++] = uint8_t(v >> (8 * b));
  }
}

double Rng::normal() {
  // Box-Muller; u1 in (0, 1].
  double u1 = 1.0 - uniform(), u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

}  // namespace aisio::fil
