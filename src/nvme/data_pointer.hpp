// Building the data pointer (DPTR) of a command: PRP entries or an SGL
// (NVMe 2.0 section 4.1.1 and 4.1.3).
//
// PRP rules: PRP1 may start at any dword offset inside a memory page; every later
// entry is page aligned. One or two pages fit in PRP1/PRP2; beyond that PRP2 points to
// a PRP list, whose last entry chains to the next list page when more entries follow.
#pragma once
#include <cstdint>

#include "memory/dma.hpp"
#include "spec/commands.hpp"

namespace aisio::nvme {

// Per-command scratch for PRP lists or SGL segments: `pages` memory pages of DMA
// memory starting at byte `off` of `buf`.
struct ListSpace {
  const DmaBuffer* buf = nullptr;
  size_t off = 0;
  uint32_t pages = 0;
};

// Outcome of building a data pointer.
enum class DptrResult : uint8_t { ok, unaligned, too_large };

// Fills sqe.prp1/prp2 (PSDT = PRP) for bytes [off, off + len) of buf.
// page_shift is CC.MPS + 12. Fast path inline: one or two pages need no list.
DptrResult build_prp_list(Sqe& sqe, const DmaBuffer& buf, size_t off, size_t len, uint32_t page_shift,
                          const ListSpace& lists);

inline DptrResult build_prp(Sqe& sqe, const DmaBuffer& buf, size_t off, size_t len, uint32_t page_shift,
                            const ListSpace& lists) {
  uint64_t prp1 = buf.iova(off);
  if (prp1 & 3u) return DptrResult::unaligned;  // PRP1 offset must be dword aligned
  uint64_t page = uint64_t(1) << page_shift;
  uint64_t first = page - (prp1 & (page - 1));  // bytes up to the end of the first page
  sqe.flags = uint8_t(sqe.flags & ~0xC0u) | PSDT_PRP;
  sqe.prp1 = prp1;
  if (len <= first) {
    sqe.prp2 = 0;
    return DptrResult::ok;
  }
  if (len <= first + page) {
    sqe.prp2 = buf.iova(off + first);
    return DptrResult::ok;
  }
  return build_prp_list(sqe, buf, off, len, page_shift, lists);
}

// Fills DPTR with an SGL (PSDT = 01b): one Data Block descriptor when the range is
// bus-contiguous, otherwise a Last Segment descriptor pointing to data block
// descriptors in `lists`.
DptrResult build_sgl(Sqe& sqe, const DmaBuffer& buf, size_t off, size_t len, const ListSpace& lists);

}  // namespace aisio::nvme
