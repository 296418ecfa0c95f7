// XFS on-disk format constants and big-endian accessors (v5 file systems). Written
// from the documented format (xfs_format.h / xfs_da_format.h concepts).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/error.hpp"

namespace aisio::extents::xfs {

inline uint16_t be16(const uint8_t* p) { return uint16_t(uint16_t(p[0]) << 8 | p[1]); }
inline uint32_t be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}
inline uint64_t be64(const uint8_t* p) { return uint64_t(be32(p)) << 32 | be32(p + 4); }
inline void put_be16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v >> 8); p[1] = uint8_t(v); }
inline void put_be32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24); p[1] = uint8_t(v >> 16); p[2] = uint8_t(v >> 8); p[3] = uint8_t(v);
}
inline void put_be64(uint8_t* p, uint64_t v) { put_be32(p, uint32_t(v >> 32)); put_be32(p + 4, uint32_t(v)); }

// A bounds-checked view of one metadata structure: every accessor throws
// aisio::Error(protocol) naming the structure instead of reading out of bounds.
class View {
 public:
  static constexpr uint64_t kNoId = ~uint64_t(0);
  View(const uint8_t* p, size_t n, std::string what) : p_(p), n_(n), what_(std::move(what)) {}
  // Cheap form for hot paths: the name ("<kind> <id> at <where>") is built only on error.
  View(const uint8_t* p, size_t n, const char* kind, uint64_t id, uint64_t where = kNoId)
      : p_(p), n_(n), kind_(kind), id_(id), where_(where) {}
  size_t size() const { return n_; }
  const uint8_t* data() const { return p_; }
  std::string what() const {
    if (!kind_) return what_;
    std::string s = std::string(kind_) + " " + std::to_string(id_);
    if (where_ != kNoId) s += " at daddr " + std::to_string(where_);
    return s;
  }
  void need(size_t off, size_t len) const {
    if (off > n_ || len > n_ - off)
      throw Error(Errc::protocol, "XFS: " + what() + ": field at byte " + std::to_string(off) + " (+" +
                                      std::to_string(len) + ") lies outside the structure (" + std::to_string(n_) +
                                      " bytes)");
  }
  uint8_t u8(size_t off) const { need(off, 1); return p_[off]; }
  uint16_t u16(size_t off) const { need(off, 2); return be16(p_ + off); }
  uint32_t u32(size_t off) const { need(off, 4); return be32(p_ + off); }
  uint64_t u64(size_t off) const { need(off, 8); return be64(p_ + off); }
  const uint8_t* at(size_t off, size_t len) const { need(off, len); return p_ + off; }

 private:
  const uint8_t* p_;
  size_t n_;
  std::string what_;
  const char* kind_ = nullptr;
  uint64_t id_ = 0, where_ = kNoId;
};

// Magic numbers.
constexpr uint32_t kSbMagic = 0x58465342;        // "XFSB"
constexpr uint32_t kAgfMagic = 0x58414746;       // "XAGF"
constexpr uint32_t kAgiMagic = 0x58414749;       // "XAGI"
constexpr uint16_t kInodeMagic = 0x494e;         // "IN"
constexpr uint32_t kBmap3Magic = 0x424d4133;     // "BMA3" long-form bmbt block, CRC
constexpr uint32_t kRefcMagic = 0x52334643;      // "R3FC" refcount btree block
constexpr uint32_t kDir3BlockMagic = 0x58444233; // "XDB3" single-block directory
constexpr uint32_t kDir3DataMagic = 0x58444433;  // "XDD3" directory data block
constexpr uint32_t kDir3FreeMagic = 0x58444633;  // "XDF3" directory free index block
constexpr uint16_t kDa3NodeMagic = 0x3ebe;       // dir/attr da-btree node
constexpr uint16_t kDir3Leaf1Magic = 0x3df1;     // leaf block of a leaf-format directory
constexpr uint16_t kDir3LeafnMagic = 0x3dff;     // leaf block of a node-format directory
constexpr uint32_t kSymlinkMagic = 0x58534c4d;   // "XSLM" remote symlink block

// Superblock (xfs_dsb) field offsets.
namespace sb {
constexpr size_t magicnum = 0, blocksize = 4, dblocks = 8, rblocks = 16, rextents = 24, uuid = 32, logstart = 48,
                 rootino = 56, rbmino = 64, rsumino = 72, rextsize = 80, agblocks = 84, agcount = 88,
                 rbmblocks = 92, logblocks = 96, versionnum = 100, sectsize = 102, inodesize = 104,
                 inopblock = 106, fname = 108, blocklog = 120, sectlog = 121, inodelog = 122, inopblog = 123,
                 agblklog = 124, rextslog = 125, inprogress = 126, imax_pct = 127, icount = 128, ifree = 136,
                 fdblocks = 144, frextents = 152, uquotino = 160, gquotino = 168, qflags = 176, flags = 178,
                 shared_vn = 179, inoalignmt = 180, unit = 184, width = 188, dirblklog = 192,
                 logsectlog = 193, logsectsize = 194, logsunit = 196, features2 = 200, bad_features2 = 204,
                 features_compat = 208, features_ro_compat = 212, features_incompat = 216,
                 features_log_incompat = 220, crc = 224, spino_align = 228, pquotino = 232, lsn = 240,
                 meta_uuid = 248, end = 264;
}
constexpr uint16_t kVersionNumMask = 0x000f;
constexpr uint16_t kVersion5 = 5;

// v5 feature bits.
constexpr uint32_t kRoCompatFinobt = 1u << 0, kRoCompatRmapbt = 1u << 1, kRoCompatReflink = 1u << 2,
                   kRoCompatInobtcnt = 1u << 3;
constexpr uint32_t kIncompatFtype = 1u << 0, kIncompatSpinodes = 1u << 1, kIncompatMetaUuid = 1u << 2,
                   kIncompatBigtime = 1u << 3, kIncompatNeedsRepair = 1u << 4, kIncompatNrext64 = 1u << 5,
                   kIncompatExchrange = 1u << 6, kIncompatParent = 1u << 7, kIncompatMetadir = 1u << 8,
                   kIncompatZoned = 1u << 9;
// Incompatible features this decoder understands; anything else is refused.
constexpr uint32_t kIncompatSupported =
    kIncompatFtype | kIncompatSpinodes | kIncompatMetaUuid | kIncompatBigtime | kIncompatNrext64;

// AGF (xfs_agf) field offsets; it sits in the second sector of each AG.
namespace agf {
constexpr size_t magicnum = 0, versionnum = 4, seqno = 8, length = 12, bno_root = 16, cnt_root = 20,
                 rmap_root = 24, bno_level = 28, cnt_level = 32, rmap_level = 36, flfirst = 40, fllast = 44,
                 flcount = 48, freeblks = 52, longest = 56, btreeblks = 60, uuid = 64, rmap_blocks = 80,
                 refcount_blocks = 84, refcount_root = 88, refcount_level = 92, lsn = 208, crc = 216, end = 224;
}

// Inode core (xfs_dinode, v3) field offsets.
namespace di {
constexpr size_t magic = 0, mode = 2, version = 4, format = 5, onlink = 6, uid = 8, gid = 12, nlink = 16,
                 projid_lo = 20, projid_hi = 22, big_nextents = 24, flushiter = 30, atime = 32, mtime = 40,
                 ctime = 48, size = 56, nblocks = 64, extsize = 72, nextents = 76, anextents = 80,
                 big_anextents = 76, forkoff = 82, aformat = 83, dmevmask = 84, dmstate = 88, flags = 90,
                 gen = 92, next_unlinked = 96, crc = 100, changecount = 104, lsn = 112, flags2 = 120,
                 cowextsize = 128, crtime = 144, ino = 152, uuid = 160, core_size = 176;
}
constexpr uint8_t kFmtDev = 0, kFmtLocal = 1, kFmtExtents = 2, kFmtBtree = 3, kFmtUuid = 4;
constexpr uint16_t kDiflagRealtime = 1u << 0;
constexpr uint64_t kDiflag2Dax = 1u << 0, kDiflag2Reflink = 1u << 1, kDiflag2Cowextsize = 1u << 2,
                   kDiflag2Bigtime = 1u << 3, kDiflag2Nrext64 = 1u << 4;
constexpr int64_t kBigtimeEpochOffset = int64_t(1) << 31;  // bigtime 0 == 1901-12-13T20:45:52Z

// Long-form (bmbt) btree block header with CRC.
namespace lblock {
constexpr size_t magic = 0, level = 4, numrecs = 6, leftsib = 8, rightsib = 16, blkno = 24, lsn = 32,
                 uuid = 40, owner = 56, crc = 64, hdr_size = 72;
}
// Short-form (per-AG) btree block header with CRC.
namespace sblock {
constexpr size_t magic = 0, level = 4, numrecs = 6, leftsib = 8, rightsib = 12, blkno = 16, lsn = 24,
                 uuid = 32, owner = 48, crc = 52, hdr_size = 56;
}
// Bmap root in the inode fork (xfs_bmdr_block).
constexpr size_t kBmdrHdrSize = 4;
constexpr size_t kBmbtRecSize = 16, kBmbtKeySize = 8, kBmbtPtrSize = 8;
constexpr int kBmbtMaxLevels = 9;
constexpr uint64_t kMaxExtLen = (uint64_t(1) << 21) - 1;

// Directory v3 block headers.
namespace dir3 {
constexpr size_t magic = 0, crc = 4, blkno = 8, lsn = 16, uuid = 24, owner = 40, blk_hdr_size = 48;
constexpr size_t bestfree = 48, data_hdr_size = 64;  // + 3 bestfree (4 bytes each) + pad
constexpr size_t free_firstdb = 48, free_nvalid = 52, free_nused = 56, free_hdr_size = 64;
}
// da3 blkinfo (node and leaf blocks of directories).
namespace da3 {
constexpr size_t forw = 0, back = 4, magic = 8, pad = 10, crc = 12, blkno = 16, lsn = 24, uuid = 32, owner = 48,
                 blkinfo_size = 56;
constexpr size_t count = 56, level_or_stale = 58, hdr_size = 64;
}
constexpr uint64_t kDirLeafOffset = uint64_t(1) << 35;  // 32 GiB: leaf/node blocks
constexpr uint64_t kDirFreeOffset = uint64_t(2) << 35;  // 64 GiB: free index blocks
constexpr uint16_t kDirDataFreeTag = 0xffff;
constexpr int kDaNodeMaxDepth = 5;

// Remote symlink block header.
namespace symlink_hdr {
constexpr size_t magic = 0, offset = 4, bytes = 8, crc = 12, uuid = 16, owner = 32, blkno = 40, lsn = 48,
                 size = 56;
}
constexpr size_t kSymlinkMaxLen = 1024;

// XFS name hash for directory lookups (xfs_da_hashname).
inline uint32_t da_hashname(const uint8_t* name, size_t len) {
  auto rol32 = [](uint32_t x, int y) { return (x << y) | (x >> (32 - y)); };
  uint32_t hash = 0;
  for (; len >= 4; len -= 4, name += 4)
    hash = (uint32_t(name[0]) << 21) ^ (uint32_t(name[1]) << 14) ^ (uint32_t(name[2]) << 7) ^ uint32_t(name[3]) ^
           rol32(hash, 7 * 4);
  switch (len) {
    case 3: return (uint32_t(name[0]) << 14) ^ (uint32_t(name[1]) << 7) ^ uint32_t(name[2]) ^ rol32(hash, 7 * 3);
    case 2: return (uint32_t(name[0]) << 7) ^ uint32_t(name[1]) ^ rol32(hash, 7 * 2);
    case 1: return uint32_t(name[0]) ^ rol32(hash, 7 * 1);
    default: return hash;
  }
}

}  // namespace aisio::extents::xfs
