#include "nvme/data_pointer.hpp"

namespace aisio::nvme {

DptrResult build_prp_list(Sqe& sqe, const DmaBuffer& buf, size_t off, size_t len, uint32_t page_shift,
                          const ListSpace& lists) {
  const uint64_t page = uint64_t(1) << page_shift;
  const uint32_t per_list = uint32_t(page / sizeof(uint64_t));
  uint64_t first = page - (sqe.prp1 & (page - 1));
  size_t pos = off + first;             // byte of buf that the next entry points to
  size_t remaining = len - first;
  uint64_t entries = (remaining + page - 1) >> page_shift;
  // Entries per list page: all but the last slot of a page chain onward when more follow.
  uint64_t list_pages_needed = entries <= per_list ? 1 : 1 + (entries - per_list + per_list - 2) / (per_list - 1);
  if (list_pages_needed > lists.pages) return DptrResult::too_large;

  uint32_t lp = 0;
  auto list_va = [&](uint32_t i) { return reinterpret_cast<uint64_t*>(lists.buf->data() + lists.off + i * page); };
  auto list_bus = [&](uint32_t i) { return lists.buf->iova(lists.off + i * page); };
  sqe.prp2 = list_bus(0);
  uint64_t* list = list_va(0);
  uint32_t slot = 0;
  while (remaining > 0) {
    if (slot == per_list - 1 && remaining > page) {
      // More than one entry still to go: the last slot chains to the next list page.
      ++lp;
      list[slot] = list_bus(lp);
      list = list_va(lp);
      slot = 0;
    }
    list[slot++] = buf.iova(pos);
    size_t step = remaining < page ? remaining : size_t(page);
    pos += step;
    remaining -= step;
  }
  return DptrResult::ok;
}

DptrResult build_sgl(Sqe& sqe, const DmaBuffer& buf, size_t off, size_t len, const ListSpace& lists) {
  sqe.flags = uint8_t(sqe.flags & ~0xC0u) | PSDT_SGL_MPTR_CONTIG;
  auto* sgl1 = reinterpret_cast<SglDescriptor*>(&sqe.prp1);
  if (buf.contiguous_from(off) >= len) {
    sgl1->addr = buf.iova(off);
    sgl1->length = uint32_t(len);
    sgl1->rsvd[0] = sgl1->rsvd[1] = sgl1->rsvd[2] = 0;
    sgl1->id = sgl::id(sgl::DATA_BLOCK);
    return DptrResult::ok;
  }
  // Discontiguous (e.g. across 2 MiB hugepages): a single Last Segment of data blocks.
  size_t cap = size_t(lists.pages) * 4096 / sizeof(SglDescriptor);
  auto* seg = reinterpret_cast<SglDescriptor*>(lists.buf->data() + lists.off);
  size_t n = 0, pos = off, remaining = len;
  while (remaining > 0) {
    if (n == cap) return DptrResult::too_large;
    size_t run = buf.contiguous_from(pos);
    if (run > remaining) run = remaining;
    seg[n] = SglDescriptor{buf.iova(pos), uint32_t(run), {0, 0, 0}, sgl::id(sgl::DATA_BLOCK)};
    ++n;
    pos += run;
    remaining -= run;
  }
  sgl1->addr = lists.buf->iova(lists.off);
  sgl1->length = uint32_t(n * sizeof(SglDescriptor));
  sgl1->rsvd[0] = sgl1->rsvd[1] = sgl1->rsvd[2] = 0;
  sgl1->id = sgl::id(sgl::LAST_SEGMENT);
  return DptrResult::ok;
}

}  // namespace aisio::nvme
