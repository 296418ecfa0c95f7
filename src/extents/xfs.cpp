#include "extents/xfs.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <iterator>
#include <set>

#include "common/error.hpp"
#include "extents/crc32c.hpp"
#include "extents/translate.hpp"
#include "extents/xfs_format.hpp"

namespace aisio::extents::xfs {
namespace {

[[noreturn]] void corrupt(const std::string& msg) { throw Error(Errc::protocol, "XFS: " + msg); }

bool pow2(uint64_t v) { return v && !(v & (v - 1)); }
int log2u(uint64_t v) { return 63 - __builtin_clzll(v); }

int64_t decode_time(const uint8_t* p, bool bigtime) {
  if (bigtime) {
    // Nanoseconds since 1901-12-13; saturate what int64 nanoseconds cannot hold
    // (only a damaged inode gets there: the format ends in 2486).
    uint64_t t = be64(p);
    int64_t sec = int64_t(t / 1000000000u) - kBigtimeEpochOffset, ns = 0;
    if (__builtin_mul_overflow(sec, int64_t(1000000000), &ns) ||
        __builtin_add_overflow(ns, int64_t(t % 1000000000u), &ns))
      return INT64_MAX;
    return ns;
  }
  int32_t sec = int32_t(be32(p));
  uint32_t nsec = be32(p + 4);
  return int64_t(sec) * 1000000000 + int64_t(nsec);
}

std::string hex32(uint32_t v) { return fmt::format("{:#010x}", v); }

std::vector<std::string> split_path(std::string_view p) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    if (j > i) out.emplace_back(p.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

}  // namespace

const char* file_type_name(FileType t) {
  static constexpr const char* names[] = {"unknown", "file", "dir", "chardev", "blockdev", "fifo", "socket", "symlink"};
  return size_t(t) < std::size(names) ? names[size_t(t)] : "unknown";
}

FileType file_type_from_mode(uint16_t mode) {
  switch (mode & 0170000) {
    case 0100000: return FileType::regular;
    case 0040000: return FileType::directory;
    case 0020000: return FileType::chardev;
    case 0060000: return FileType::blockdev;
    case 0010000: return FileType::fifo;
    case 0140000: return FileType::socket;
    case 0120000: return FileType::symlink;
  }
  return FileType::unknown;
}

const char* dir_format_name(DirFormat f) {
  static constexpr const char* names[] = {"shortform", "block", "leaf", "node"};
  return size_t(f) < std::size(names) ? names[size_t(f)] : "?";
}

bool Superblock::has_ftype() const { return features_incompat & kIncompatFtype; }
bool Superblock::has_sparse_inodes() const { return features_incompat & kIncompatSpinodes; }
bool Superblock::has_reflink() const { return features_ro_compat & kRoCompatReflink; }
bool Superblock::has_finobt() const { return features_ro_compat & kRoCompatFinobt; }
bool Superblock::has_rmapbt() const { return features_ro_compat & kRoCompatRmapbt; }
bool Superblock::has_bigtime() const { return features_incompat & kIncompatBigtime; }
bool Superblock::has_nrext64() const { return features_incompat & kIncompatNrext64; }
bool Inode::reflink() const { return flags2 & kDiflag2Reflink; }

std::vector<std::string> Superblock::feature_names() const {
  std::vector<std::string> out{"crc"};
  if (has_ftype()) out.push_back("ftype");
  if (has_sparse_inodes()) out.push_back("sparse");
  if (features_incompat & kIncompatMetaUuid) out.push_back("meta_uuid");
  if (has_bigtime()) out.push_back("bigtime");
  if (has_nrext64()) out.push_back("nrext64");
  if (has_finobt()) out.push_back("finobt");
  if (has_rmapbt()) out.push_back("rmapbt");
  if (has_reflink()) out.push_back("reflink");
  if (features_ro_compat & kRoCompatInobtcnt) out.push_back("inobtcount");
  if (features_ro_compat & ~(kRoCompatFinobt | kRoCompatRmapbt | kRoCompatReflink | kRoCompatInobtcnt))
    out.push_back(fmt::format("ro_compat:{:#x}", features_ro_compat));
  return out;
}

std::string Superblock::uuid_string() const {
  const uint8_t* u = uuid;
  return fmt::format("{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
                     u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
                     u[15]);
}

Superblock parse_superblock(std::span<const uint8_t> s, bool verify_crc) {
  if (s.size() < sb::end) corrupt("superblock buffer too small");
  View v(s.data(), s.size(), "superblock");
  uint32_t magic = v.u32(sb::magicnum);
  if (magic != kSbMagic)
    throw Error(Errc::protocol, "not an XFS file system: superblock magic " + hex32(magic) +
                                    " (expected 0x58465342 \"XFSB\")");
  Superblock r;
  r.version = v.u16(sb::versionnum);
  if ((r.version & kVersionNumMask) != kVersion5)
    throw Error(Errc::not_supported, fmt::format("XFS: version {} file system (v4 or older, crc=0) is not supported; "
                                                 "only v5 (crc=1) file systems are",
                                                 r.version & kVersionNumMask));
  r.sector_size = v.u16(sb::sectsize);
  if (!pow2(r.sector_size) || r.sector_size < 512 || r.sector_size > 32768 ||
      v.u8(sb::sectlog) != log2u(r.sector_size))
    corrupt(fmt::format("superblock: bad sector size {} (sectlog {})", r.sector_size, v.u8(sb::sectlog)));
  if (s.size() < r.sector_size) corrupt("superblock buffer shorter than the sector size");
  if (verify_crc && !xfs_verify_cksum(s.data(), r.sector_size, sb::crc))
    corrupt(fmt::format("superblock CRC mismatch (stored {}, computed {})",
                        hex32(uint32_t(s[sb::crc]) | uint32_t(s[sb::crc + 1]) << 8 |
                              uint32_t(s[sb::crc + 2]) << 16 | uint32_t(s[sb::crc + 3]) << 24),
                        hex32(xfs_cksum(s.data(), r.sector_size, sb::crc))));

  r.features_compat = v.u32(sb::features_compat);
  r.features_ro_compat = v.u32(sb::features_ro_compat);
  r.features_incompat = v.u32(sb::features_incompat);
  r.features_log_incompat = v.u32(sb::features_log_incompat);
  if (uint32_t bad = r.features_incompat & ~kIncompatSupported) {
    static const std::pair<uint32_t, const char*> names[] = {
        {kIncompatNeedsRepair, "needsrepair (the file system must be repaired with xfs_repair first)"},
        {kIncompatExchrange, "exchrange (file content exchange)"},
        {kIncompatParent, "parent (directory parent pointers)"},
        {kIncompatMetadir, "metadir (metadata directory tree)"},
        {kIncompatZoned, "zoned (zoned realtime device)"},
    };
    std::string list;
    for (auto& [bit, name] : names)
      if (bad & bit) {
        list += list.empty() ? "" : ", ";
        list += name;
        bad &= ~bit;
      }
    if (bad) list += (list.empty() ? "" : ", ") + fmt::format("unknown incompat feature bits {:#x}", bad);
    throw Error(Errc::not_supported, "XFS: unsupported incompatible feature(s): " + list);
  }

  r.block_size = v.u32(sb::blocksize);
  r.block_log = v.u8(sb::blocklog);
  if (!pow2(r.block_size) || r.block_size < 512 || r.block_size > 65536 || r.block_log != log2u(r.block_size))
    corrupt(fmt::format("superblock: bad block size {} (blocklog {})", r.block_size, r.block_log));
  if (r.block_size < r.sector_size) corrupt("superblock: block size smaller than the sector size");
  r.inode_size = v.u16(sb::inodesize);
  r.inode_log = v.u8(sb::inodelog);
  if (!pow2(r.inode_size) || r.inode_size < 512 || r.inode_size > 2048 || r.inode_log != log2u(r.inode_size) ||
      r.inode_size > r.block_size)
    corrupt(fmt::format("superblock: bad inode size {} (v5 needs 512..2048)", r.inode_size));
  r.inodes_per_block = v.u16(sb::inopblock);
  r.inopb_log = v.u8(sb::inopblog);
  if (r.inodes_per_block != r.block_size / r.inode_size || r.inopb_log != log2u(r.inodes_per_block))
    corrupt("superblock: inodes per block inconsistent with block and inode size");
  r.ag_blocks = v.u32(sb::agblocks);
  r.ag_count = v.u32(sb::agcount);
  r.ag_blk_log = v.u8(sb::agblklog);
  if (r.ag_blocks < 16 || r.ag_count == 0 || r.ag_blk_log != log2u(r.ag_blocks - 1) + 1 ||
      r.ag_blk_log + r.inopb_log > 32)
    corrupt(fmt::format("superblock: bad AG geometry (agblocks {}, agcount {}, agblklog {})", r.ag_blocks,
                        r.ag_count, r.ag_blk_log));
  r.data_blocks = v.u64(sb::dblocks);
  if (r.data_blocks <= uint64_t(r.ag_count - 1) * r.ag_blocks || r.data_blocks > uint64_t(r.ag_count) * r.ag_blocks)
    corrupt(fmt::format("superblock: dblocks {} does not match {} AGs of {} blocks", r.data_blocks, r.ag_count,
                        r.ag_blocks));
  if (r.data_blocks > (uint64_t(1) << (63 - r.block_log))) corrupt("superblock: file system size overflows");
  r.dir_blk_log = v.u8(sb::dirblklog);
  if (r.dir_blk_log > 16 || (uint64_t(r.block_size) << r.dir_blk_log) > 65536)
    corrupt(fmt::format("superblock: bad directory block log {}", r.dir_blk_log));
  r.dir_block_size = r.block_size << r.dir_blk_log;
  if (v.u8(sb::inprogress)) corrupt("superblock: mkfs did not finish (sb_inprogress set)");
  r.rt_blocks = v.u64(sb::rblocks);
  r.root_ino = v.u64(sb::rootino);
  r.log_start = v.u64(sb::logstart);
  r.log_blocks = v.u32(sb::logblocks);
  r.icount = v.u64(sb::icount);
  r.ifree = v.u64(sb::ifree);
  r.fdblocks = v.u64(sb::fdblocks);
  std::memcpy(r.uuid, v.at(sb::uuid, 16), 16);
  if (r.features_incompat & kIncompatMetaUuid)
    std::memcpy(r.meta_uuid, v.at(sb::meta_uuid, 16), 16);
  else
    std::memcpy(r.meta_uuid, r.uuid, 16);
  const char* name = reinterpret_cast<const char*>(v.at(sb::fname, 12));
  r.label.assign(name, strnlen(name, 12));
  return r;
}

// ---------------------------------------------------------------------------------

Filesystem::Filesystem(std::shared_ptr<BlockReader> dev, Options opt) : dev_(std::move(dev)), opt_(opt) {
  if (!dev_) throw Error(Errc::invalid_argument, "XFS: no device");
  refresh();
}

std::unique_ptr<Filesystem> Filesystem::open(const std::string& path, uint64_t offset, Options opt) {
  return std::make_unique<Filesystem>(open_block_reader(path, offset), opt);
}

void Filesystem::refresh() {
  extent_cache_.clear();
  inode_cache_.clear();
  bmap_cache_.clear();
  agfs_.clear();
  uint64_t size = dev_->size();
  if (size < 512)
    throw Error(Errc::protocol, "XFS: device is " + std::to_string(size) + " bytes, too small for a superblock");
  auto first = read(0, 512);
  uint16_t sect = be16(first.data() + sb::sectsize);
  if (be32(first.data()) == kSbMagic && pow2(sect) && sect > 512 && sect <= 32768 && sect <= size)
    first = read(0, sect);
  sb_ = parse_superblock(first, opt_.verify_crc);
  uint64_t need = sb_.data_blocks << sb_.block_log;
  if (need > size)
    throw Error(Errc::protocol, fmt::format("XFS: the file system needs {} bytes ({} blocks of {}) but the device "
                                            "has {} (truncated image?)",
                                            need, sb_.data_blocks, sb_.block_size, size));
  check_ino(sb_.root_ino);
}

bool Filesystem::crc_ok(const std::vector<uint8_t>& b, size_t crc_off) const {
  return !opt_.verify_crc || xfs_verify_cksum(b.data(), b.size(), crc_off);
}

std::vector<uint8_t> Filesystem::read(uint64_t byte, size_t len) {
  std::vector<uint8_t> b(len);
  dev_->read(byte, b.data(), len);
  return b;
}

uint32_t Filesystem::ag_length(uint32_t agno) const {
  if (agno + 1 < sb_.ag_count) return sb_.ag_blocks;
  return uint32_t(sb_.data_blocks - uint64_t(sb_.ag_count - 1) * sb_.ag_blocks);
}

uint64_t Filesystem::fsblock_to_byte(uint64_t fsb) const {
  uint64_t agno = fsb >> sb_.ag_blk_log;
  uint64_t agbno = fsb & ((uint64_t(1) << sb_.ag_blk_log) - 1);
  if (agno >= sb_.ag_count || agbno >= ag_length(uint32_t(agno)))
    corrupt(fmt::format("block number {} (AG {} block {}) is outside the file system", fsb, agno, agbno));
  return (agno * sb_.ag_blocks + agbno) << sb_.block_log;
}

void Filesystem::check_uuid(const uint8_t* p, const std::string& what) const {
  if (std::memcmp(p, sb_.meta_uuid, 16) != 0) corrupt(what + ": UUID does not match the file system");
}

void Filesystem::check_ino(uint64_t ino) const { (void)inode_location(ino); }

Location Filesystem::inode_location(uint64_t ino) const {
  uint32_t agino_bits = sb_.ag_blk_log + sb_.inopb_log;
  uint64_t agno = ino >> agino_bits;
  uint64_t agbno = (ino >> sb_.inopb_log) & ((uint64_t(1) << sb_.ag_blk_log) - 1);
  uint64_t idx = ino & ((uint64_t(1) << sb_.inopb_log) - 1);
  if (agno >= sb_.ag_count || agbno >= ag_length(uint32_t(agno)) || ino == 0)
    corrupt(fmt::format("inode number {} is outside the file system (AG {}, block {})", ino, agno, agbno));
  Location l{uint32_t(agno), uint32_t(agbno), uint32_t(idx), 0};
  l.byte = ((agno * sb_.ag_blocks + agbno) << sb_.block_log) + (idx << sb_.inode_log);
  return l;
}

Inode Filesystem::inode(uint64_t ino) {
  if (auto it = inode_cache_.find(ino); it != inode_cache_.end()) return it->second;
  Location loc = inode_location(ino);
  auto buf = read(loc.byte, sb_.inode_size);
  std::string what = "inode " + std::to_string(ino);
  View v(buf.data(), buf.size(), "inode", ino);
  if (v.u16(di::magic) != kInodeMagic)
    corrupt(fmt::format("{}: bad magic {:#06x} (expected 0x494e \"IN\"; not an inode or free sparse chunk)", what,
                        v.u16(di::magic)));
  Inode r;
  r.ino = ino;
  r.version = v.u8(di::version);
  if (r.version != 3) corrupt(fmt::format("{}: version {} (v5 file systems use v3 inodes)", what, r.version));
  if (!crc_ok(buf, di::crc)) corrupt(what + ": CRC mismatch");
  if (v.u64(di::ino) != ino) corrupt(fmt::format("{}: core says it is inode {} (misdirected)", what, v.u64(di::ino)));
  check_uuid(v.at(di::uuid, 16), what);
  r.mode = v.u16(di::mode);
  r.format = v.u8(di::format);
  r.aformat = v.u8(di::aformat);
  r.uid = v.u32(di::uid);
  r.gid = v.u32(di::gid);
  r.nlink = v.u32(di::nlink);
  r.size = v.u64(di::size);
  r.nblocks = v.u64(di::nblocks);
  r.forkoff = v.u8(di::forkoff);
  r.flags = v.u16(di::flags);
  r.flags2 = v.u64(di::flags2);
  r.gen = v.u32(di::gen);
  if (r.flags2 & kDiflag2Nrext64) {
    if (!sb_.has_nrext64()) corrupt(what + ": large extent counts without the nrext64 feature");
    r.nextents = v.u64(di::big_nextents);
    r.anextents = v.u32(di::big_anextents);
  } else {
    r.nextents = v.u32(di::nextents);
    r.anextents = v.u16(di::anextents);
  }
  bool big = r.flags2 & kDiflag2Bigtime;
  if (big && !sb_.has_bigtime()) corrupt(what + ": bigtime timestamps without the bigtime feature");
  r.atime_ns = decode_time(v.at(di::atime, 8), big);
  r.mtime_ns = decode_time(v.at(di::mtime, 8), big);
  r.ctime_ns = decode_time(v.at(di::ctime, 8), big);
  r.crtime_ns = decode_time(v.at(di::crtime, 8), big);
  if (r.size > (uint64_t(1) << 63) - 1) corrupt(what + ": size too large");

  size_t lit = size_t(sb_.inode_size) - di::core_size;
  size_t dsize = r.forkoff ? size_t(r.forkoff) * 8 : lit;
  if (dsize >= lit + (r.forkoff ? 0 : 1)) corrupt(fmt::format("{}: attr fork offset {} beyond the inode", what, r.forkoff));
  r.data_fork.assign(buf.begin() + di::core_size, buf.begin() + di::core_size + dsize);

  FileType t = r.type();
  auto bad_format = [&] {
    corrupt(fmt::format("{}: data fork format {} is invalid for a {} (mode {:o})", what, r.format,
                        file_type_name(t), r.mode));
  };
  switch (t) {
    case FileType::unknown:
      corrupt(fmt::format("{}: not in use or bad mode {:o}", what, r.mode));
    case FileType::chardev:
    case FileType::blockdev:
    case FileType::fifo:
    case FileType::socket:
      if (r.format != kFmtDev) bad_format();
      if (dsize >= 4) r.rdev = be32(r.data_fork.data());
      break;
    case FileType::regular:
      if (r.format != kFmtExtents && r.format != kFmtBtree) bad_format();
      break;
    case FileType::directory:
    case FileType::symlink:
      if (r.format != kFmtLocal && r.format != kFmtExtents && r.format != kFmtBtree) bad_format();
      break;
  }
  if (r.format == kFmtLocal && r.size > dsize)
    corrupt(fmt::format("{}: inline data of {} bytes does not fit the {}-byte fork", what, r.size, dsize));
  if (r.format == kFmtExtents && r.nextents > dsize / kBmbtRecSize)
    corrupt(fmt::format("{}: {} extents do not fit the {}-byte fork", what, r.nextents, dsize));
  if (inode_cache_.size() >= kMaxCached) inode_cache_.clear();
  inode_cache_.emplace(ino, r);
  return r;
}

void Filesystem::check_record(const Inode& ino, const BmapRecord& r) {
  if (r.block_count == 0) corrupt(fmt::format("inode {}: extent with zero length", ino.ino));
  uint64_t max_fsb = (uint64_t(1) << 63) >> sb_.block_log;
  if (r.file_block >= max_fsb || r.block_count > max_fsb - r.file_block)
    corrupt(fmt::format("inode {}: extent at file block {} beyond the maximum file size", ino.ino, r.file_block));
  (void)fsblock_to_byte(r.start_block);
  uint64_t agbno = r.start_block & ((uint64_t(1) << sb_.ag_blk_log) - 1);
  uint32_t agno = uint32_t(r.start_block >> sb_.ag_blk_log);
  if (agbno + r.block_count > ag_length(agno))
    corrupt(fmt::format("inode {}: extent at block {} (+{}) crosses the end of AG {}", ino.ino, r.start_block,
                        r.block_count, agno));
}

static BmapRecord decode_rec(const uint8_t* p) {
  uint64_t l0 = be64(p), l1 = be64(p + 8);
  BmapRecord r;
  r.unwritten = l0 >> 63;
  r.file_block = (l0 & ((uint64_t(1) << 63) - 1)) >> 9;
  r.start_block = ((l0 & 0x1ff) << 43) | (l1 >> 21);
  r.block_count = l1 & kMaxExtLen;
  return r;
}

void Filesystem::bmbt_walk(const Inode& ino, uint64_t fsb, int level, std::vector<BmapRecord>& out,
                           std::map<uint64_t, int>& seen) {
  std::string what = fmt::format("inode {} bmbt block {}", ino.ino, fsb);
  if (!seen.emplace(fsb, level).second) corrupt(what + ": block reached twice (btree cycle)");
  if (seen.size() > sb_.data_blocks) corrupt(what + ": more btree blocks than the file system has");
  uint64_t byte = fsblock_to_byte(fsb);
  auto buf = read(byte, sb_.block_size);
  View v(buf.data(), buf.size(), what);
  if (v.u32(lblock::magic) != kBmap3Magic)
    corrupt(fmt::format("{}: bad magic {} (expected \"BMA3\")", what, hex32(v.u32(lblock::magic))));
  if (!crc_ok(buf, lblock::crc)) corrupt(what + ": CRC mismatch");
  if (v.u16(lblock::level) != level)
    corrupt(fmt::format("{}: level {} where level {} was expected (btree cycle or misdirected pointer)", what,
                        v.u16(lblock::level), level));
  if (v.u64(lblock::blkno) != byte / 512) corrupt(what + ": block address field does not match its location");
  if (v.u64(lblock::owner) != ino.ino) corrupt(fmt::format("{}: owned by inode {}", what, v.u64(lblock::owner)));
  check_uuid(v.at(lblock::uuid, 16), what);
  size_t maxrecs = (sb_.block_size - lblock::hdr_size) / kBmbtRecSize;  // == keys+ptrs per node too
  size_t n = v.u16(lblock::numrecs);
  if (n == 0 || n > maxrecs) corrupt(fmt::format("{}: {} records (max {})", what, n, maxrecs));
  if (level == 0) {
    for (size_t i = 0; i < n; ++i) {
      BmapRecord r = decode_rec(v.at(lblock::hdr_size + i * kBmbtRecSize, kBmbtRecSize));
      check_record(ino, r);
      if (out.size() >= ino.nextents)
        corrupt(fmt::format("inode {}: bmbt holds more extents than di_nextents ({})", ino.ino, ino.nextents));
      out.push_back(r);
    }
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    uint64_t ptr = v.u64(lblock::hdr_size + maxrecs * kBmbtKeySize + i * kBmbtPtrSize);
    bmbt_walk(ino, ptr, level - 1, out, seen);
  }
}

std::vector<BmapRecord> Filesystem::bmap(uint64_t ino) { return bmap(inode(ino)); }

std::vector<BmapRecord> Filesystem::bmap(const Inode& ino) {
  if (auto it = bmap_cache_.find(ino.ino); it != bmap_cache_.end()) return it->second;
  std::vector<BmapRecord> out;
  const auto& f = ino.data_fork;
  if (ino.format == kFmtExtents) {
    for (uint64_t i = 0; i < ino.nextents; ++i) {
      BmapRecord r = decode_rec(f.data() + i * kBmbtRecSize);  // fits: checked by inode()
      check_record(ino, r);
      out.push_back(r);
    }
  } else if (ino.format == kFmtBtree) {
    std::string what = fmt::format("inode {} bmbt root", ino.ino);
    View v(f.data(), f.size(), what);
    int level = v.u16(0);
    size_t n = v.u16(2);
    size_t maxrecs = (f.size() - kBmdrHdrSize) / (kBmbtKeySize + kBmbtPtrSize);
    if (level < 1 || level > kBmbtMaxLevels) corrupt(fmt::format("{}: bad level {}", what, level));
    if (n == 0 || n > maxrecs) corrupt(fmt::format("{}: {} records (max {})", what, n, maxrecs));
    if (ino.nextents == 0) corrupt(what + ": btree format with no extents");
    std::map<uint64_t, int> seen;
    for (size_t i = 0; i < n; ++i) {
      uint64_t ptr = v.u64(kBmdrHdrSize + maxrecs * kBmbtKeySize + i * kBmbtPtrSize);
      bmbt_walk(ino, ptr, level - 1, out, seen);
    }
    if (out.size() != ino.nextents)
      corrupt(fmt::format("inode {}: bmbt holds {} extents but di_nextents is {}", ino.ino, out.size(),
                          ino.nextents));
  } else {
    return out;
  }
  uint64_t total = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (i && out[i].file_block < out[i - 1].file_block + out[i - 1].block_count)
      corrupt(fmt::format("inode {}: extents out of order or overlapping at file block {}", ino.ino,
                          out[i].file_block));
    total += out[i].block_count;
    if (total > sb_.data_blocks) corrupt(fmt::format("inode {}: maps more blocks than the file system has", ino.ino));
  }
  if (bmap_cache_.size() >= kMaxCached) bmap_cache_.clear();
  bmap_cache_.emplace(ino.ino, out);
  return out;
}

// ---------------------------------------------------------------------------------
// Reflink: which blocks the refcount btree says are shared.

const Filesystem::Agf& Filesystem::agf(uint32_t agno) {
  auto it = agfs_.find(agno);
  if (it != agfs_.end()) return it->second;
  std::string what = "AGF " + std::to_string(agno);
  uint64_t byte = (uint64_t(agno) * sb_.ag_blocks << sb_.block_log) + sb_.sector_size;
  auto buf = read(byte, sb_.sector_size);
  View v(buf.data(), buf.size(), what);
  if (v.u32(agf::magicnum) != kAgfMagic) corrupt(what + ": bad magic " + hex32(v.u32(agf::magicnum)));
  if (!crc_ok(buf, agf::crc)) corrupt(what + ": CRC mismatch");
  if (v.u32(agf::seqno) != agno) corrupt(fmt::format("{}: sequence number {}", what, v.u32(agf::seqno)));
  check_uuid(v.at(agf::uuid, 16), what);
  Agf a;
  a.length = v.u32(agf::length);
  a.refcount_root = v.u32(agf::refcount_root);
  a.refcount_level = v.u32(agf::refcount_level);
  if (a.length != ag_length(agno)) corrupt(fmt::format("{}: length {} (expected {})", what, a.length, ag_length(agno)));
  if (sb_.has_reflink() && (a.refcount_level < 1 || a.refcount_level > kBmbtMaxLevels || a.refcount_root == 0 ||
                            a.refcount_root >= a.length))
    corrupt(fmt::format("{}: bad refcount btree root {} level {}", what, a.refcount_root, a.refcount_level));
  return agfs_.emplace(agno, a).first->second;
}

void Filesystem::refcount_walk(uint32_t agno, uint32_t agbno, int level, uint32_t lo, uint32_t hi,
                               std::vector<Refc>& out, std::map<uint32_t, int>& seen) {
  std::string what = fmt::format("AG {} refcount btree block {}", agno, agbno);
  if (agbno >= ag_length(agno)) corrupt(what + ": outside the AG");
  if (!seen.emplace(agbno, level).second) corrupt(what + ": block reached twice (btree cycle)");
  uint64_t fsb = (uint64_t(agno) << sb_.ag_blk_log) | agbno;
  uint64_t byte = fsblock_to_byte(fsb);
  auto buf = read(byte, sb_.block_size);
  View v(buf.data(), buf.size(), what);
  if (v.u32(sblock::magic) != kRefcMagic) corrupt(what + ": bad magic " + hex32(v.u32(sblock::magic)));
  if (!crc_ok(buf, sblock::crc)) corrupt(what + ": CRC mismatch");
  if (v.u16(sblock::level) != level)
    corrupt(fmt::format("{}: level {} where {} was expected (btree cycle?)", what, v.u16(sblock::level), level));
  if (v.u64(sblock::blkno) != byte / 512) corrupt(what + ": block address field does not match its location");
  if (v.u32(sblock::owner) != agno) corrupt(what + ": wrong AG owner");
  check_uuid(v.at(sblock::uuid, 16), what);
  size_t n = v.u16(sblock::numrecs);
  const size_t h = sblock::hdr_size;
  if (level == 0) {
    size_t maxrecs = (sb_.block_size - h) / 12;
    if (n > maxrecs) corrupt(fmt::format("{}: {} records (max {})", what, n, maxrecs));
    for (size_t i = 0; i < n; ++i) {
      uint32_t start = v.u32(h + i * 12), count = v.u32(h + i * 12 + 4), rc = v.u32(h + i * 12 + 8);
      if (start & 0x80000000u) continue;  // CoW staging extent, not sharing
      if (rc < 2 || count == 0) continue;
      uint64_t end = uint64_t(start) + count;
      if (end <= lo || start >= hi) continue;
      out.push_back({start, count, rc});
    }
    return;
  }
  size_t maxrecs = (sb_.block_size - h) / 8;
  if (n == 0 || n > maxrecs) corrupt(fmt::format("{}: {} keys (max {})", what, n, maxrecs));
  for (size_t i = 0; i < n; ++i) {
    uint64_t klo = v.u32(h + i * 4);
    uint64_t khi = i + 1 < n ? v.u32(h + (i + 1) * 4) : uint64_t(1) << 32;
    if (klo >= hi || khi <= lo) continue;
    refcount_walk(agno, v.u32(h + maxrecs * 4 + i * 4), level - 1, lo, hi, out, seen);
  }
}

std::vector<Filesystem::Refc> Filesystem::shared_ranges(uint32_t agno, uint32_t agbno, uint32_t len) {
  const Agf& a = agf(agno);
  std::vector<Refc> recs;
  std::map<uint32_t, int> seen;
  refcount_walk(agno, a.refcount_root, int(a.refcount_level) - 1, agbno, agbno + len, recs, seen);
  std::sort(recs.begin(), recs.end(), [](const Refc& x, const Refc& y) { return x.start < y.start; });
  // Clip to the range and merge contiguous shared records (the kernel reports a
  // run of shared blocks as one extent even when refcounts differ).
  std::vector<Refc> out;
  for (auto r : recs) {
    uint64_t s = std::max<uint64_t>(r.start, agbno), e = std::min<uint64_t>(uint64_t(r.start) + r.count, uint64_t(agbno) + len);
    if (s >= e) continue;
    if (!out.empty() && uint64_t(out.back().start) + out.back().count > s)
      corrupt(fmt::format("AG {} refcount btree: overlapping records at block {}", agno, s));
    if (!out.empty() && uint64_t(out.back().start) + out.back().count == s) {
      out.back().count += uint32_t(e - s);
      continue;
    }
    out.push_back({uint32_t(s), uint32_t(e - s), r.refcount});
  }
  return out;
}

std::vector<Extent> Filesystem::extents(uint64_t ino, bool reread) {
  if (!reread) {
    auto it = extent_cache_.find(ino);
    if (it != extent_cache_.end()) return it->second;
  } else {
    extent_cache_.erase(ino);
    inode_cache_.erase(ino);
    bmap_cache_.erase(ino);
    agfs_.clear();
  }
  Inode in = inode(ino);
  if (in.flags & kDiflagRealtime)
    throw Error(Errc::not_supported, fmt::format("XFS: inode {} is a realtime file (data on the realtime device)", ino));
  auto recs = bmap(in);
  bool reflink = sb_.has_reflink() && in.reflink();
  std::vector<Extent> out;
  const uint32_t bl = sb_.block_log;
  for (const auto& r : recs) {
    uint64_t phys = fsblock_to_byte(r.start_block);
    if (r.unwritten || !reflink) {
      out.push_back({r.file_block << bl, phys, r.block_count << bl, r.unwritten ? kExtUnwritten : 0u});
      continue;
    }
    uint32_t agno = uint32_t(r.start_block >> sb_.ag_blk_log);
    uint32_t agbno = uint32_t(r.start_block & ((uint64_t(1) << sb_.ag_blk_log) - 1));
    uint64_t pos = agbno, end = uint64_t(agbno) + r.block_count;
    auto piece = [&](uint64_t s, uint64_t e, uint32_t fl) {
      out.push_back({(r.file_block + (s - agbno)) << bl, phys + ((s - agbno) << bl), (e - s) << bl, fl});
    };
    for (const auto& s : shared_ranges(agno, agbno, uint32_t(r.block_count))) {
      if (s.start > pos) piece(pos, s.start, 0);
      piece(s.start, uint64_t(s.start) + s.count, kExtShared);
      pos = uint64_t(s.start) + s.count;
    }
    if (pos < end) piece(pos, end, 0);
  }
  if (!out.empty()) out.back().flags |= kExtLast;
  if (extent_cache_.size() >= kMaxCached) extent_cache_.clear();
  extent_cache_[ino] = out;
  return out;
}

// ---------------------------------------------------------------------------------

std::string Filesystem::readlink(uint64_t ino) {
  Inode in = inode(ino);
  std::string what = fmt::format("symlink inode {}", ino);
  if (!in.is_symlink()) throw Error(Errc::invalid_argument, fmt::format("XFS: inode {} is not a symlink", ino));
  if (in.size == 0 || in.size > kSymlinkMaxLen) corrupt(fmt::format("{}: bad length {}", what, in.size));
  if (in.format == kFmtLocal) return std::string(reinterpret_cast<const char*>(in.data_fork.data()), size_t(in.size));
  std::string out;
  const size_t hdr = symlink_hdr::size;
  for (const auto& r : bmap(in)) {
    for (uint64_t b = 0; b < r.block_count && out.size() < in.size; ++b) {
      uint64_t byte = fsblock_to_byte(r.start_block + b);
      auto buf = read(byte, sb_.block_size);
      View v(buf.data(), buf.size(), what + " block");
      if (v.u32(symlink_hdr::magic) != kSymlinkMagic) corrupt(what + ": remote block has bad magic");
      if (!crc_ok(buf, symlink_hdr::crc)) corrupt(what + ": remote block CRC mismatch");
      if (v.u64(symlink_hdr::owner) != ino) corrupt(what + ": remote block owned by another inode");
      if (v.u64(symlink_hdr::blkno) != byte / 512) corrupt(what + ": remote block address mismatch");
      check_uuid(v.at(symlink_hdr::uuid, 16), what);
      uint32_t off = v.u32(symlink_hdr::offset), n = v.u32(symlink_hdr::bytes);
      if (off != out.size() || n == 0 || n > sb_.block_size - hdr || n > in.size - out.size())
        corrupt(fmt::format("{}: remote block offset {} / length {} inconsistent", what, off, n));
      out.append(reinterpret_cast<const char*>(v.at(hdr, n)), n);
    }
    if (out.size() >= in.size) break;
  }
  if (out.size() != in.size) corrupt(fmt::format("{}: target has {} of {} bytes", what, out.size(), in.size));
  return out;
}

uint64_t Filesystem::resolve(std::string_view path, const ResolveOptions& opt) {
  std::deque<std::string> comps;
  for (auto& c : split_path(path)) comps.push_back(std::move(c));
  uint64_t cur = sb_.root_ino;
  int links = 0;
  std::string done = "";
  while (!comps.empty()) {
    std::string name = std::move(comps.front());
    comps.pop_front();
    if (name == ".") continue;
    Inode d = inode(cur);
    if (!d.is_dir())
      throw Error(Errc::invalid_argument, fmt::format("XFS: {}: Not a directory", done.empty() ? "/" : done));
    auto child = lookup(cur, name);
    done += "/" + name;
    if (!child)
      throw Error(Errc::invalid_argument, fmt::format("XFS: {}: No such file or directory", std::string(path)));
    Inode c = inode(*child);
    if (c.is_symlink() && (!comps.empty() || opt.follow_final)) {
      if (++links > opt.max_symlinks)
        throw Error(Errc::invalid_argument,
                    fmt::format("XFS: {}: too many levels of symbolic links (symlink loop?)", std::string(path)));
      std::string target = readlink(*child);
      auto tc = split_path(target);
      comps.insert(comps.begin(), tc.begin(), tc.end());
      if (!target.empty() && target[0] == '/') {
        cur = sb_.root_ino;
        done.clear();
      } else {
        done.resize(done.rfind('/'));
      }
      continue;
    }
    cur = *child;
  }
  return cur;
}

void Filesystem::walk(uint64_t dir_ino, const std::function<void(const WalkEntry&)>& fn, bool recursive) {
  std::map<uint64_t, std::string> dirs{{dir_ino, "."}};
  constexpr int kMaxDepth = 2048;
  std::function<void(uint64_t, const std::string&, int)> rec = [&](uint64_t dir, const std::string& prefix, int depth) {
    if (depth > kMaxDepth) corrupt("directory tree deeper than " + std::to_string(kMaxDepth) + " levels");
    auto entries = list(dir);
    for (auto& e : entries) {
      WalkEntry w{prefix.empty() ? e.name : prefix + "/" + e.name, e, depth};
      if (w.entry.type == FileType::unknown) w.entry.type = inode(e.ino).type();
      fn(w);
      if (recursive && w.entry.type == FileType::directory) {
        auto [it, fresh] = dirs.emplace(e.ino, w.path);
        if (!fresh)
          corrupt(fmt::format("directory loop: '{}' is inode {}, which was already reached as '{}'", w.path, e.ino,
                              it->second));
        rec(e.ino, w.path, depth + 1);
      }
    }
  };
  rec(dir_ino, "", 0);
}

std::vector<uint8_t> Filesystem::read_file(uint64_t ino, uint64_t off, uint64_t len) {
  Inode in = inode(ino);
  if (!in.is_reg()) throw Error(Errc::invalid_argument, fmt::format("XFS: inode {} is not a regular file", ino));
  uint64_t end = len > in.size - std::min(off, in.size) ? in.size : off + len;
  if (off >= end) return {};
  if (end - off > (uint64_t(1) << 30))
    throw Error(Errc::invalid_argument, "XFS: read_file range over 1 GiB; read in pieces");
  auto ext = extents(ino);
  std::vector<uint8_t> out(size_t(end - off));
  TranslateOptions t;
  t.lba_size = 512;
  t.file_size = in.size;
  read_file_range(*dev_, ext, off, end, t, out.data());
  return out;
}

ScanStats scan(Filesystem& fs, const ScanOptions& opt) {
  ScanStats st;
  size_t n = 0;
  auto check_dir = [&](uint64_t ino) {
    ++st.dirs;
    (void)fs.dir_info(ino);
    size_t k = 0;
    for (const auto& e : fs.list(ino)) {
      if (k++ >= opt.max_lookups_per_dir) break;
      auto r = fs.lookup(ino, e.name);
      ++st.lookups;
      if (!r || *r != e.ino)
        corrupt(fmt::format("directory inode {}: entry '{}' (inode {}) not found through the hash index", ino, e.name,
                            e.ino));
    }
  };
  check_dir(fs.root());
  fs.walk(fs.root(), [&](const WalkEntry& w) {
    if (++n > opt.max_entries) throw Error(Errc::invalid_argument, "XFS scan: entry budget exhausted");
    Inode in = fs.inode(w.entry.ino);
    if (w.entry.type != FileType::unknown && w.entry.type != in.type())
      corrupt(fmt::format("'{}': directory entry type {} but inode {} is a {}", w.path, file_type_name(w.entry.type),
                          in.ino, file_type_name(in.type())));
    switch (in.type()) {
      case FileType::regular: {
        ++st.files;
        st.extents += fs.extents(in.ino).size();
        if (opt.read_bytes && in.size) st.bytes_read += fs.read_file(in.ino, 0, opt.read_bytes).size();
        break;
      }
      case FileType::directory:
        check_dir(in.ino);
        break;
      case FileType::symlink:
        ++st.symlinks;
        (void)fs.readlink(in.ino);
        break;
      default:
        ++st.special;
    }
  });
  return st;
}

}  // namespace aisio::extents::xfs
