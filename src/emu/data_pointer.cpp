#include "emu/data_pointer.hpp"

#include <algorithm>
#include <cstring>

#include "emu/outcome.hpp"

namespace aisio::emu {

using nvme::Status;
namespace sc = nvme::sc;

void copy_to_host(const SegmentList& dst, const uint8_t* src, size_t n) {
  for (const Segment& s : dst) {
    if (n == 0) return;
    size_t k = std::min(n, s.len);
    if (s.ops) [[unlikely]] s.ops->to_device(s.ops->ctx, s.p, src, k);
    else std::memcpy(s.p, src, k);
    src += k;
    n -= k;
  }
}

void copy_from_host(const SegmentList& src, uint8_t* dst, size_t n) {
  for (const Segment& s : src) {
    if (n == 0) return;
    size_t k = std::min(n, s.len);
    if (s.ops) [[unlikely]] s.ops->from_device(s.ops->ctx, dst, s.p, k);
    else std::memcpy(dst, s.p, k);
    dst += k;
    n -= k;
  }
}

namespace {
// Device-memory segments are zeroed and compared through a small bounce buffer.
constexpr size_t kBounce = 4096;
}  // namespace

bool equal_host(const SegmentList& a, const uint8_t* b) {
  for (const Segment& s : a) {
    if (!s.ops) {
      if (std::memcmp(s.p, b, s.len) != 0) return false;
    } else {
      uint8_t tmp[kBounce];
      for (size_t o = 0; o < s.len; o += kBounce) {
        size_t k = std::min(kBounce, s.len - o);
        s.ops->from_device(s.ops->ctx, tmp, s.p + o, k);
        if (std::memcmp(tmp, b + o, k) != 0) return false;
      }
    }
    b += s.len;
  }
  return true;
}

Status map_prp(const DmaSpace& space, uint64_t prp1, uint64_t prp2, size_t len, uint32_t page_shift,
               SegmentList& out) {
  out.clear();
  if (len == 0) return Status{};
  const uint64_t page = uint64_t(1) << page_shift, mask = page - 1;
  // PRP1 may carry an offset into its page, but it must be dword aligned.
  if (prp1 & 3) return generic_error(sc::PRP_OFFSET_INVALID);
  size_t first = std::min<size_t>(len, page - (prp1 & mask));
  const DeviceMemoryOps* ops = nullptr;  // data pages may be device memory; PRP lists may not
  uint8_t* p = space.translate_data(prp1, first, &ops);
  if (!p) return transfer_error();
  out.add(p, first, ops);
  size_t remaining = len - first;
  if (remaining == 0) return Status{};

  if (remaining <= page) {
    // PRP2 is the second (and last) data page: no offset allowed.
    if (prp2 & mask) return generic_error(sc::PRP_OFFSET_INVALID);
    if (!(p = space.translate_data(prp2, remaining, &ops))) return transfer_error();
    out.add(p, remaining, ops);
    return Status{};
  }

  // PRP2 points at a PRP list; the first list may start at a qword offset in its page.
  uint64_t list = prp2;
  if (list & 7) return generic_error(sc::PRP_OFFSET_INVALID);
  while (remaining) {
    size_t entries = size_t((page - (list & mask)) / 8);
    size_t needed = size_t((remaining + mask) >> page_shift);  // data entries still to read
    size_t readable = std::min(entries, needed);  // more needed: all, the chain pointer included
    auto* l = reinterpret_cast<const uint64_t*>(space.translate(list, readable * 8));
    if (!l) return transfer_error();
    size_t i = 0;
    for (; i < entries && remaining; ++i) {
      uint64_t e = l[i];
      // The last entry of a list page chains to the next list page when more than
      // one entry is still needed.
      if (i == entries - 1 && remaining > page) {
        if (e & mask) return generic_error(sc::PRP_OFFSET_INVALID);
        list = e;
        break;
      }
      if (e & mask) return generic_error(sc::PRP_OFFSET_INVALID);
      size_t n = std::min<size_t>(remaining, page);
      if (!(p = space.translate_data(e, n, &ops))) return transfer_error();
      out.add(p, n, ops);
      remaining -= n;
    }
  }
  return Status{};
}

namespace {
// The 16-byte SGL descriptor as DPTR or a segment list holds it.
nvme::SglDescriptor read_desc(const uint8_t* p) {
  nvme::SglDescriptor d;
  std::memcpy(&d, p, sizeof d);  // segment lists need not be 8-byte aligned
  return d;
}
}  // namespace

Status map_sgl(const DmaSpace& space, const nvme::Sqe& cmd, size_t len, SegmentList& out) {
  out.clear();
  nvme::SglDescriptor d;
  std::memcpy(&d, &cmd.prp1, sizeof d);  // SGL1 occupies CDW6..CDW9
  size_t total = 0;
  auto data_block = [&](const nvme::SglDescriptor& b) -> Status {
    if (b.length == 0) return Status{};
    if (b.length > len - total) return generic_error(sc::DATA_SGL_LENGTH_INVALID);
    const DeviceMemoryOps* ops = nullptr;
    uint8_t* p = space.translate_data(b.addr, b.length, &ops);
    if (!p) return transfer_error();
    out.add(p, b.length, ops);
    total += b.length;
    return Status{};
  };
  // Bound the walk: a segment chain pointing back at itself would otherwise never end.
  for (unsigned segments = 0;; ++segments) {
    if (segments > 65536) return generic_error(sc::INVALID_NUMBER_OF_SGL_DESCRIPTORS);
    if ((d.id & 0xF) != 0) return generic_error(sc::SGL_DESCRIPTOR_TYPE_INVALID);  // only "address" subtype on PCIe
    uint8_t type = nvme::sgl::type(d.id);
    if (type == nvme::sgl::DATA_BLOCK) {
      Status st = data_block(d);
      if (!st.ok()) return st;
      break;
    }
    if (type != nvme::sgl::SEGMENT && type != nvme::sgl::LAST_SEGMENT)
      return generic_error(sc::SGL_DESCRIPTOR_TYPE_INVALID);
    if (d.length == 0 || d.length % 16) return generic_error(sc::INVALID_SGL_SEGMENT_DESCRIPTOR);
    const uint8_t* seg = space.translate(d.addr, d.length);
    if (!seg) return transfer_error();
    size_t n = d.length / 16;
    bool last_segment = type == nvme::sgl::LAST_SEGMENT;
    bool chained = false;
    for (size_t i = 0; i < n; ++i) {
      nvme::SglDescriptor e = read_desc(seg + 16 * i);
      if ((e.id & 0xF) != 0) return generic_error(sc::SGL_DESCRIPTOR_TYPE_INVALID);
      uint8_t t = nvme::sgl::type(e.id);
      if (t == nvme::sgl::DATA_BLOCK) {
        Status st = data_block(e);
        if (!st.ok()) return st;
      } else if (t == nvme::sgl::SEGMENT || t == nvme::sgl::LAST_SEGMENT) {
        // Only the last descriptor of a (non-last) segment may point to the next segment.
        if (last_segment || i != n - 1) return generic_error(sc::INVALID_SGL_SEGMENT_DESCRIPTOR);
        d = e;
        chained = true;
      } else {
        return generic_error(sc::SGL_DESCRIPTOR_TYPE_INVALID);
      }
    }
    if (last_segment) break;
    if (!chained) return generic_error(sc::INVALID_SGL_SEGMENT_DESCRIPTOR);  // a Segment must chain on
  }
  if (total != len) return generic_error(sc::DATA_SGL_LENGTH_INVALID);
  return Status{};
}

Status map_data(const DmaSpace& space, const nvme::Sqe& cmd, size_t len, uint32_t page_shift, bool sgl_allowed,
                SegmentList& out) {
  switch (nvme::psdt(cmd.flags)) {
    case 0: return map_prp(space, cmd.prp1, cmd.prp2, len, page_shift, out);
    case 1:
      if (!sgl_allowed) return generic_error(sc::INVALID_FIELD);
      return map_sgl(space, cmd, len, out);
    default:  // SGL for metadata (no metadata formats here) and the reserved value
      return generic_error(sc::INVALID_FIELD);
  }
}

}  // namespace aisio::emu
