// The fuzz input format for file system images: only the non-zero parts of an image,
// so inputs stay small (~100 KB for a 16 MiB XFS) and mutations land on metadata.
//
//   0  "XFZ1"
//   4  u8 flags       bit 0: verify CRCs (off: the decoder's structural checks are
//                     what stands between the input and memory)
//   5  u8 size_log2   image size = 1 << size_log2 (clamped to 16..30)
//   6  u16 reserved
//   8  chunks to the end: u32le sector (512 B units), u16le length, data[length]
//
// Bytes no chunk covers read as zero; later chunks win where chunks overlap.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "extents/block_reader.hpp"

namespace aisio::fuzz {

class SparseImage : public extents::BlockReader {
 public:
  struct Chunk {
    uint64_t off;
    const uint8_t* p;
    size_t n;
  };
  // False when `data` is not in this format.
  bool parse(const uint8_t* data, size_t size) {
    if (size < 8 || std::memcmp(data, "XFZ1", 4) != 0) return false;
    verify_crc_ = data[4] & 1;
    size_ = uint64_t(1) << std::clamp<int>(data[5], 16, 30);
    size_t pos = 8;
    while (pos + 6 <= size) {
      uint32_t sector = uint32_t(data[pos]) | uint32_t(data[pos + 1]) << 8 | uint32_t(data[pos + 2]) << 16 |
                        uint32_t(data[pos + 3]) << 24;
      size_t len = size_t(data[pos + 4]) | size_t(data[pos + 5]) << 8;
      pos += 6;
      len = std::min(len, size - pos);
      uint64_t off = uint64_t(sector) * 512;
      if (len && off < size_) chunks_.push_back({off, data + pos, size_t(std::min<uint64_t>(len, size_ - off))});
      pos += len;
    }
    return true;
  }
  bool verify_crc() const { return verify_crc_; }
  uint64_t size() override { return size_; }
  void read(uint64_t off, void* buf, size_t len) override {
    if (off > size_ || len > size_ - off) {
      extents::MemoryBlockReader empty({});
      empty.read(off, buf, len);  // throws the usual "past the end" error
    }
    auto* out = static_cast<uint8_t*>(buf);
    std::memset(out, 0, len);
    for (const auto& c : chunks_) {
      uint64_t s = std::max(off, c.off), e = std::min(off + len, c.off + c.n);
      if (s < e) std::memcpy(out + (s - off), c.p + (s - c.off), size_t(e - s));
    }
  }

  // Encodes an image: every non-zero 512-byte sector outside [skip_begin, skip_end)
  // (e.g. the log, which the decoder never reads), adjacent ones merged.
  static std::vector<uint8_t> encode(const std::vector<uint8_t>& img, bool verify_crc, uint64_t skip_begin = 0,
                                     uint64_t skip_end = 0) {
    std::vector<uint8_t> out{'X', 'F', 'Z', '1', uint8_t(verify_crc ? 1 : 0), 0, 0, 0};
    int lg = 16;
    while ((uint64_t(1) << lg) < img.size() && lg < 30) ++lg;
    out[5] = uint8_t(lg);
    size_t nsect = img.size() / 512;
    auto zero = [&](size_t s) {
      if (s * 512 >= skip_begin && s * 512 < skip_end) return true;
      return std::all_of(img.begin() + long(s * 512), img.begin() + long(s * 512 + 512), [](uint8_t v) { return !v; });
    };
    for (size_t s = 0; s < nsect;) {
      if (zero(s)) {
        ++s;
        continue;
      }
      size_t e = s + 1;
      while (e < nsect && !zero(e) && (e - s) < 127) ++e;
      uint32_t sec = uint32_t(s);
      uint16_t len = uint16_t((e - s) * 512);
      uint8_t h[6] = {uint8_t(sec), uint8_t(sec >> 8), uint8_t(sec >> 16), uint8_t(sec >> 24), uint8_t(len),
                      uint8_t(len >> 8)};
      out.insert(out.end(), h, h + 6);
      out.insert(out.end(), img.begin() + long(s * 512), img.begin() + long(e * 512));
      s = e;
    }
    return out;
  }

 private:
  bool verify_crc_ = true;
  uint64_t size_ = 0;
  std::vector<Chunk> chunks_;
};

}  // namespace aisio::fuzz
