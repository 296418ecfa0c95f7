#include "extents/extent.hpp"

#include <fmt/ranges.h>

#include "common/error.hpp"

namespace aisio::extents {

std::vector<std::string> flag_list(uint32_t flags) {
  static const std::pair<uint32_t, const char*> names[] = {
      {kExtUnwritten, "unwritten"}, {kExtShared, "shared"},   {kExtDelalloc, "delalloc"},
      {kExtHole, "hole"},           {kExtLast, "last"},       {kExtUnknown, "unknown"},
      {kExtInline, "inline"},       {kExtEncoded, "encoded"}, {kExtNotAligned, "not_aligned"},
  };
  std::vector<std::string> out;
  for (auto& [bit, name] : names)
    if (flags & bit) out.emplace_back(name);
  return out;
}

std::string flag_names(uint32_t flags) { return fmt::format("{}", fmt::join(flag_list(flags), ",")); }

void check_sorted(std::span<const Extent> ext, const std::string& what) {
  uint64_t pos = 0;
  for (size_t i = 0; i < ext.size(); ++i) {
    const auto& e = ext[i];
    if (e.length == 0) throw Error(Errc::protocol, what + ": extent " + std::to_string(i) + " has zero length");
    if (e.logical + e.length < e.logical)
      throw Error(Errc::protocol, what + ": extent " + std::to_string(i) + " wraps around");
    if (i && e.logical < pos)
      throw Error(Errc::protocol, what + ": extent " + std::to_string(i) + " at file offset " +
                                      std::to_string(e.logical) + " overlaps or is out of order");
    pos = e.end();
  }
}

std::vector<Extent> fill_holes(std::span<const Extent> ext, uint64_t file_size) {
  std::vector<Extent> out;
  uint64_t pos = 0;
  for (const auto& e : ext) {
    if (e.logical > pos) out.push_back({pos, 0, e.logical - pos, kExtHole});
    Extent c = e;
    c.flags &= ~kExtLast;
    out.push_back(c);
    pos = std::max(pos, e.end());
  }
  if (file_size > pos) out.push_back({pos, 0, file_size - pos, kExtHole});
  if (!out.empty()) out.back().flags |= kExtLast;
  return out;
}

std::vector<Extent> merge_adjacent(std::span<const Extent> ext) {
  std::vector<Extent> out;
  for (const auto& e : ext) {
    if (!out.empty()) {
      auto& b = out.back();
      bool same = ((b.flags ^ e.flags) & ~kExtLast) == 0;
      bool located = !e.has(kExtHole | kExtDelalloc | kExtUnknown);
      if (same && b.end() == e.logical && (!located || b.physical + b.length == e.physical)) {
        b.length += e.length;
        b.flags |= e.flags & kExtLast;
        continue;
      }
    }
    out.push_back(e);
  }
  return out;
}

}  // namespace aisio::extents
