#include "common/free_ranges.hpp"

#include <iterator>

namespace aisio {

void free_range(FreeRanges& f, uint64_t start, uint64_t len) {
  auto it = f.emplace(start, len).first;
  auto next = std::next(it);
  if (next != f.end() && it->first + it->second == next->first) {
    it->second += next->second;
    f.erase(next);
  }
  if (it != f.begin()) {
    auto prev = std::prev(it);
    if (prev->first + prev->second == it->first) {
      prev->second += it->second;
      f.erase(it);
    }
  }
}

std::optional<uint64_t> take_range(FreeRanges& f, uint64_t len, uint64_t align, uint64_t base) {
  for (auto it = f.begin(); it != f.end(); ++it) {
    const uint64_t start = it->first, flen = it->second;
    const uint64_t pad = ((base + start + align - 1) & ~(align - 1)) - (base + start);
    if (flen < pad + len) continue;
    f.erase(it);
    if (pad) f.emplace(start, pad);
    if (flen > pad + len) f.emplace(start + pad + len, flen - pad - len);
    return start + pad;
  }
  return std::nullopt;
}

}  // namespace aisio
