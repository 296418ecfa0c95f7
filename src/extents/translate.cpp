#include "extents/translate.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "common/error.hpp"

namespace aisio::extents {
namespace {

void push_zero(std::vector<LbaRun>& out, uint64_t off, uint64_t len) {
  if (!len) return;
  if (!out.empty() && out.back().zero_fill && out.back().file_offset + out.back().length == off) {
    out.back().length += len;
    return;
  }
  out.push_back({off, len, true, 0, 0, 0});
}

}  // namespace

std::vector<LbaRun> translate(std::span<const Extent> extents, uint64_t a, uint64_t b, const TranslateOptions& opt) {
  const uint64_t lba = opt.lba_size;
  if (lba < 512 || (lba & (lba - 1)))
    throw Error(Errc::invalid_argument, "LBA size " + std::to_string(lba) + " is not a power of two >= 512");
  if (opt.max_nlb == 0) throw Error(Errc::invalid_argument, "max_nlb must be > 0");
  if (b < a) throw Error(Errc::invalid_argument, "range end before start");
  check_sorted(extents, "extent list");
  b = std::min(b, opt.file_size);
  std::vector<LbaRun> out;
  if (a >= b) return out;

  uint64_t pos = a;
  // First extent that ends after a.
  auto it = std::upper_bound(extents.begin(), extents.end(), a,
                             [](uint64_t v, const Extent& e) { return v < e.end(); });
  for (; it != extents.end() && pos < b; ++it) {
    const Extent& e = *it;
    if (e.logical >= b) break;
    if (e.logical > pos) {  // implicit hole
      push_zero(out, pos, e.logical - pos);
      pos = e.logical;
    }
    uint64_t end = std::min(b, e.end());
    if (e.reads_as_zeros()) {
      push_zero(out, pos, end - pos);
      pos = end;
      continue;
    }
    // Extents whose bytes cannot be read at an LBA (checked in this order: a delalloc
    // extent is also unknown).
    static constexpr std::pair<uint32_t, const char*> unreadable[] = {
        {kExtDelalloc, "is delayed allocation (no device location yet): resolve with sync (FIEMAP_FLAG_SYNC) or "
                       "fsync the file first"},
        {kExtUnknown, "has no known device location"},
        {kExtInline, "is stored inline in metadata (no LBA)"},
        {kExtEncoded, "is encoded (compressed or encrypted): device bytes are not file bytes"},
    };
    for (auto [flag, why] : unreadable)
      if (e.has(flag))
        throw Error(Errc::not_supported, fmt::format("extent [{}, {}) {}", e.logical, e.end(), why));
    while (pos < end) {
      uint64_t dev = e.physical + opt.device_offset + (pos - e.logical);
      if (dev < e.physical) throw Error(Errc::invalid_argument, "device offset overflows");
      uint64_t slba = dev / lba;
      uint32_t skip = uint32_t(dev % lba);
      uint64_t max_bytes = uint64_t(opt.max_nlb) * lba - skip;
      uint64_t len = std::min(end - pos, max_bytes);
      uint64_t nlb = (skip + len + lba - 1) / lba;
      out.push_back({pos, len, false, slba, uint32_t(nlb), skip});
      pos += len;
    }
  }
  push_zero(out, pos, b - pos);  // past the last extent: hole up to b
  return out;
}

void read_file_range(BlockReader& dev, std::span<const Extent> extents, uint64_t a, uint64_t b,
                     const TranslateOptions& opt, void* outp) {
  auto* out = static_cast<uint8_t*>(outp);
  auto runs = translate(extents, a, std::max(a, std::min(b, opt.file_size)), opt);
  std::vector<uint8_t> buf;
  uint64_t done = a;
  for (const auto& r : runs) {
    uint8_t* dst = out + (r.file_offset - a);
    if (r.zero_fill) {
      std::memset(dst, 0, r.length);
    } else {
      buf.resize(size_t(r.nlb) * opt.lba_size);
      dev.read(r.slba * opt.lba_size, buf.data(), buf.size());
      std::memcpy(dst, buf.data() + r.skip, r.length);
    }
    done = r.file_offset + r.length;
  }
  if (b > done) std::memset(out + (done - a), 0, b - done);  // clipped at EOF
}

}  // namespace aisio::extents
