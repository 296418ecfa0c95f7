#include <fmt/format.h>

#include "common/error.hpp"
#include "p2p/bus_resolver.hpp"

namespace aisio::p2p {

std::vector<uint64_t> page_table(const std::vector<DmaSegment>& segs, size_t len, size_t page_size,
                                 const std::string& who) {
  std::vector<uint64_t> t(len / page_size);
  size_t page = 0;
  uint64_t covered = 0;
  for (const auto& s : segs) {
    if (page == t.size()) break;  // segments past the buffer's end are not ours
    if ((s.addr | s.len) & (page_size - 1))
      throw Error(Errc::protocol, fmt::format("{}: DMA segment {:#x}+{:#x} is not aligned to {} KiB pages", who,
                                              s.addr, s.len, page_size >> 10));
    for (uint64_t o = 0; o < s.len && page < t.size(); o += page_size) t[page++] = s.addr + o;
    covered += s.len;
  }
  if (page < t.size())
    throw Error(Errc::protocol,
                fmt::format("{}: the {} DMA segment(s) cover {} of the buffer's {} bytes, so {} of its {} KiB pages "
                            "have no bus address",
                            who, segs.size(), covered, len, t.size() - page, page_size >> 10));
  return t;
}

}  // namespace aisio::p2p
