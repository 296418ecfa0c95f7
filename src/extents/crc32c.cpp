#include "extents/crc32c.hpp"

#include <array>
#include <cstring>

namespace aisio::extents {
namespace {

// Slicing-by-8 tables for the reflected Castagnoli polynomial 0x82F63B78.
struct Tables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  Tables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  }
};
const Tables& tables() {
  static const Tables tb;
  return tb;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t crc32c_hw(uint32_t crc, const uint8_t* p, size_t len) {
  uint64_t c = crc;
  while (len >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    len -= 8;
  }
  uint32_t c32 = uint32_t(c);
  while (len--) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return c32;
}
bool have_hw() {
  static const bool hw = __builtin_cpu_supports("sse4.2");
  return hw;
}
#endif

uint32_t crc32c_sw(uint32_t crc, const void* data, size_t len);

}  // namespace

uint32_t crc32c_update(uint32_t crc, const void* data, size_t len) {
#if defined(__x86_64__)
  if (have_hw()) return crc32c_hw(crc, static_cast<const uint8_t*>(data), len);
#endif
  return crc32c_sw(crc, data, len);
}

namespace {
uint32_t crc32c_sw(uint32_t crc, const void* data, size_t len) {
  const auto& t = tables().t;
  auto* p = static_cast<const uint8_t*>(data);
  while (len >= 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    lo = __builtin_bswap32(lo);
    hi = __builtin_bswap32(hi);
#endif
    lo ^= crc;
    crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
          t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    p += 8;
    len -= 8;
  }
  while (len--) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
  return crc;
}
}  // namespace

uint32_t xfs_cksum(const void* buf, size_t len, size_t crc_off) {
  static const uint8_t zero[4] = {0, 0, 0, 0};
  auto* p = static_cast<const uint8_t*>(buf);
  uint32_t c = crc32c_update(~0u, p, crc_off);
  c = crc32c_update(c, zero, 4);
  c = crc32c_update(c, p + crc_off + 4, len - crc_off - 4);
  return ~c;
}

bool xfs_verify_cksum(const void* buf, size_t len, size_t crc_off) {
  if (len < crc_off + 4) return false;
  auto* p = static_cast<const uint8_t*>(buf) + crc_off;
  uint32_t stored = uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
  return stored == xfs_cksum(buf, len, crc_off);
}

void xfs_update_cksum(void* buf, size_t len, size_t crc_off) {
  if (len < crc_off + 4) return;
  uint32_t c = xfs_cksum(buf, len, crc_off);
  auto* p = static_cast<uint8_t*>(buf) + crc_off;
  p[0] = uint8_t(c);
  p[1] = uint8_t(c >> 8);
  p[2] = uint8_t(c >> 16);
  p[3] = uint8_t(c >> 24);
}

}  // namespace aisio::extents
