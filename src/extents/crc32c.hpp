// CRC32c (Castagnoli), as used by XFS v5 metadata checksums.
#pragma once
#include <cstddef>
#include <cstdint>

namespace aisio::extents {

// Raw update: crc = crc32c_update(crc, p, n) with no pre/post inversion.
uint32_t crc32c_update(uint32_t crc, const void* data, size_t len);

// The standard CRC32c of a buffer (init ~0, final ~): crc32c("123456789") == 0xE3069283.
inline uint32_t crc32c(const void* data, size_t len) { return ~crc32c_update(~0u, data, len); }

// XFS metadata checksum: CRC32c of `len` bytes with the 4-byte field at `crc_off`
// taken as zero. The field stores this value little-endian.
uint32_t xfs_cksum(const void* buf, size_t len, size_t crc_off);
bool xfs_verify_cksum(const void* buf, size_t len, size_t crc_off);
// Recomputes and stores the checksum (used by tests and tools that craft images).
void xfs_update_cksum(void* buf, size_t len, size_t crc_off);

}  // namespace aisio::extents
