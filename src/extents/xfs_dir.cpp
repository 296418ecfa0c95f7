// XFS directories: shortform (inline), block, leaf and node formats, with the data
// fork in extents or btree ("btree directories") format. Listing reads the data
// blocks (below 32 GiB in the data fork); lookup uses the hash index (the block's
// leaf array, the leaf block at 32 GiB, or the da-btree of a node directory).
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "common/error.hpp"
#include "extents/crc32c.hpp"
#include "extents/xfs.hpp"
#include "extents/xfs_format.hpp"

namespace aisio::extents::xfs {
namespace {

[[noreturn]] void corrupt(const std::string& msg) { throw Error(Errc::protocol, "XFS: " + msg); }

FileType ftype_to_type(uint8_t ft) {
  if (ft >= 1 && ft <= 7) return FileType(ft);
  return FileType::unknown;
}

// First record whose range contains file block fb, or nullptr.
const BmapRecord* find_rec(const std::vector<BmapRecord>& map, uint64_t fb) {
  auto it = std::upper_bound(map.begin(), map.end(), fb,
                             [](uint64_t v, const BmapRecord& r) { return v < r.file_block; });
  if (it == map.begin()) return nullptr;
  --it;
  if (fb < it->file_block + it->block_count) return &*it;
  return nullptr;
}

// Block form (one directory block holding data and hash index) iff the data fork
// ends right after directory block 0, as the kernel decides (xfs_dir2_isblock).
bool is_block_form(const std::vector<BmapRecord>& map, uint32_t nfsb) {
  return !map.empty() && map.back().file_block + map.back().block_count == nfsb;
}

}  // namespace

std::optional<std::vector<uint8_t>> Filesystem::read_dir_block(const Inode& dir, const std::vector<BmapRecord>& map,
                                                               uint64_t dablk, uint32_t nfsb, uint64_t* daddr) {
  std::vector<const BmapRecord*> recs(nfsb);
  uint32_t mapped = 0;
  for (uint32_t i = 0; i < nfsb; ++i)
    if ((recs[i] = find_rec(map, dablk + i))) ++mapped;
  if (mapped == 0) return std::nullopt;
  if (mapped != nfsb)
    corrupt(fmt::format("directory inode {}: directory block at file block {} is only partly mapped", dir.ino, dablk));
  std::vector<uint8_t> out(size_t(nfsb) * sb_.block_size);
  for (uint32_t i = 0; i < nfsb; ++i) {
    const BmapRecord* r = recs[i];
    if (r->unwritten) corrupt(fmt::format("directory inode {}: unwritten extent at block {}", dir.ino, dablk + i));
    uint64_t byte = fsblock_to_byte(r->start_block + (dablk + i - r->file_block));
    if (i == 0 && daddr) *daddr = byte / 512;
    dev_->read(byte, out.data() + size_t(i) * sb_.block_size, sb_.block_size);
  }
  return out;
}

void Filesystem::parse_shortform(const Inode& dir, std::vector<DirEntry>& out, uint64_t* parent) {
  auto what = [&] { return fmt::format("shortform directory inode {}", dir.ino); };
  View v(dir.data_fork.data(), size_t(dir.size), "shortform directory inode", dir.ino);  // size <= fork size: checked in inode()
  size_t count = v.u8(0), i8 = v.u8(1);
  size_t isz = i8 ? 8 : 4;
  uint64_t par = i8 ? v.u64(2) : v.u32(2);
  check_ino(par);
  if (parent) *parent = par;
  bool ft = sb_.has_ftype();
  size_t p = 2 + isz;
  for (size_t i = 0; i < count; ++i) {
    size_t namelen = v.u8(p);
    if (namelen == 0) corrupt(what() + ": entry with an empty name");
    const uint8_t* name = v.at(p + 3, namelen);
    size_t q = p + 3 + namelen;
    uint8_t ftype = ft ? v.u8(q++) : 0;
    uint64_t ino = isz == 8 ? v.u64(q) : v.u32(q);
    check_ino(ino);
    out.push_back({std::string(reinterpret_cast<const char*>(name), namelen), ino, ftype_to_type(ftype)});
    p = q + isz;
  }
}

void Filesystem::parse_data_block(const Inode& dir, const std::vector<uint8_t>& blk, uint64_t daddr, bool single,
                                  std::vector<DirEntry>* out, size_t at_offset, DirEntry* at_entry) {
  auto what = [&] {
    return fmt::format("directory inode {} {} block at daddr {}", dir.ino, single ? "single" : "data", daddr);
  };
  View v(blk.data(), blk.size(), "directory inode", dir.ino, daddr);
  uint32_t magic = v.u32(dir3::magic);
  uint32_t want = single ? kDir3BlockMagic : kDir3DataMagic;
  if (magic != want) corrupt(fmt::format("{}: bad magic {:#010x} (expected {:#010x})", what(), magic, want));
  if (!crc_ok(blk, dir3::crc)) corrupt(what() + ": CRC mismatch");
  if (v.u64(dir3::blkno) != daddr) corrupt(what() + ": block address field does not match its location");
  if (v.u64(dir3::owner) != dir.ino) corrupt(fmt::format("{}: owned by inode {}", what(), v.u64(dir3::owner)));
  check_uuid(v.at(dir3::uuid, 16), what());
  size_t end = blk.size();
  if (single) {
    uint64_t count = v.u32(end - 8);
    if (count * 8 + 8 > end - dir3::data_hdr_size) corrupt(fmt::format("{}: leaf count {} too large", what(), count));
    end -= 8 + size_t(count) * 8;
  }
  bool ft = sb_.has_ftype();
  if (at_entry) {
    size_t p = at_offset;
    if (p < dir3::data_hdr_size || p >= end || (p & 7))
      corrupt(fmt::format("{}: hash index points at bad offset {}", what(), p));
    if (v.u16(p) == kDirDataFreeTag) corrupt(fmt::format("{}: hash index points at a free entry", what()));
    size_t namelen = v.u8(p + 8);
    size_t entsize = (8 + 1 + namelen + (ft ? 1 : 0) + 2 + 7) & ~size_t(7);
    if (namelen == 0 || p + entsize > end) corrupt(fmt::format("{}: bad entry at offset {}", what(), p));
    at_entry->ino = v.u64(p);
    at_entry->name.assign(reinterpret_cast<const char*>(v.at(p + 9, namelen)), namelen);
    at_entry->type = ftype_to_type(ft ? v.u8(p + 9 + namelen) : 0);
    check_ino(at_entry->ino);
    return;
  }
  size_t p = dir3::data_hdr_size;
  while (p < end) {
    if (v.u16(p) == kDirDataFreeTag) {
      size_t len = v.u16(p + 2);
      if (len < 8 || (len & 7) || p + len > end) corrupt(fmt::format("{}: bad free space of {} bytes at {}", what(), len, p));
      if (v.u16(p + len - 2) != p) corrupt(fmt::format("{}: free space tag mismatch at {}", what(), p));
      p += len;
      continue;
    }
    size_t namelen = v.u8(p + 8);
    size_t entsize = (8 + 1 + namelen + (ft ? 1 : 0) + 2 + 7) & ~size_t(7);
    if (namelen == 0 || p + entsize > end) corrupt(fmt::format("{}: bad entry at offset {}", what(), p));
    if (v.u16(p + entsize - 2) != p) corrupt(fmt::format("{}: entry tag mismatch at offset {}", what(), p));
    DirEntry e;
    e.ino = v.u64(p);
    e.name.assign(reinterpret_cast<const char*>(v.at(p + 9, namelen)), namelen);
    e.type = ftype_to_type(ft ? v.u8(p + 9 + namelen) : 0);
    check_ino(e.ino);
    if (out) out->push_back(std::move(e));
    p += entsize;
  }
}

std::vector<DirEntry> Filesystem::list_all(const Inode& dir, uint64_t* parent) {
  std::vector<DirEntry> out;
  if (!dir.is_dir()) throw Error(Errc::invalid_argument, fmt::format("XFS: inode {} is not a directory", dir.ino));
  if (dir.format == kFmtLocal) {
    parse_shortform(dir, out, parent);
    return out;
  }
  auto map = bmap(dir);
  const uint32_t nfsb = 1u << sb_.dir_blk_log;
  const uint64_t leaf_fb = kDirLeafOffset >> sb_.block_log;
  const bool single = is_block_form(map, nfsb);
  if (single && dir.size != sb_.dir_block_size)
    corrupt(fmt::format("directory inode {}: block-form directory with size {} (expected {})", dir.ino, dir.size,
                        sb_.dir_block_size));
  uint64_t next_db = 0;  // dir blocks below this were done
  for (const auto& r : map) {
    if (r.file_block >= leaf_fb) break;
    uint64_t db = std::max(next_db, r.file_block >> sb_.dir_blk_log);
    uint64_t db_end = (std::min(r.file_block + r.block_count, leaf_fb) + nfsb - 1) >> sb_.dir_blk_log;
    for (; db < db_end; ++db) {
      uint64_t daddr = 0;
      auto blk = read_dir_block(dir, map, db << sb_.dir_blk_log, nfsb, &daddr);
      if (!blk) continue;
      parse_data_block(dir, *blk, daddr, single, &out, 0, nullptr);
    }
    next_db = std::max(next_db, db_end);
  }
  if (parent) {
    *parent = 0;
    for (auto& e : out)
      if (e.name == "..") *parent = e.ino;
    if (!*parent) corrupt(fmt::format("directory inode {}: no \"..\" entry", dir.ino));
  }
  return out;
}

std::vector<DirEntry> Filesystem::list(uint64_t dir_ino) {
  uint64_t parent = 0;
  auto all = list_all(inode(dir_ino), &parent);
  std::vector<DirEntry> out;
  out.reserve(all.size());
  for (auto& e : all)
    if (e.name != "." && e.name != "..") out.push_back(std::move(e));
  return out;
}

uint64_t Filesystem::parent(uint64_t dir_ino) {
  auto p = lookup(dir_ino, "..");
  if (!p) corrupt(fmt::format("directory inode {}: no parent", dir_ino));
  return *p;
}

std::vector<uint8_t> Filesystem::read_da_block(const Inode& dir, const std::vector<BmapRecord>& map, uint64_t dablk,
                                               const char* kind) {
  uint64_t daddr = 0;
  auto blk = read_dir_block(dir, map, dablk, 1u << sb_.dir_blk_log, &daddr);
  auto what = [&] { return fmt::format("directory inode {} {} block at file block {}", dir.ino, kind, dablk); };
  if (!blk) corrupt(what() + ": not mapped");
  View v(blk->data(), blk->size(), "directory inode", dir.ino, daddr);
  uint16_t magic = v.u16(da3::magic);
  if (magic != kDa3NodeMagic && magic != kDir3Leaf1Magic && magic != kDir3LeafnMagic)
    corrupt(fmt::format("{}: bad magic {:#06x}", what(), magic));
  if (!crc_ok(*blk, da3::crc)) corrupt(what() + ": CRC mismatch");
  if (v.u64(da3::blkno) != daddr) corrupt(what() + ": block address field does not match its location");
  if (v.u64(da3::owner) != dir.ino) corrupt(fmt::format("{}: owned by inode {}", what(), v.u64(da3::owner)));
  check_uuid(v.at(da3::uuid, 16), what());
  return std::move(*blk);
}

std::optional<uint64_t> Filesystem::check_dataptr(const Inode& dir, const std::vector<BmapRecord>& map, uint32_t addr,
                                                  std::string_view name) {
  uint64_t byte = uint64_t(addr) << 3;
  uint64_t db = byte >> (sb_.block_log + sb_.dir_blk_log);
  size_t off = size_t(byte & (sb_.dir_block_size - 1));
  if (byte >= kDirLeafOffset) corrupt(fmt::format("directory inode {}: hash entry points past the data area", dir.ino));
  uint64_t daddr = 0;
  auto blk = read_dir_block(dir, map, db << sb_.dir_blk_log, 1u << sb_.dir_blk_log, &daddr);
  if (!blk) corrupt(fmt::format("directory inode {}: hash entry points into a hole (dir block {})", dir.ino, db));
  bool single = is_block_form(map, 1u << sb_.dir_blk_log);
  DirEntry e;
  parse_data_block(dir, *blk, daddr, single, nullptr, off, &e);
  if (e.name == name) return e.ino;
  return std::nullopt;
}

std::optional<uint64_t> Filesystem::lookup_linear(const Inode& dir, std::string_view name) {
  uint64_t parent = 0;
  auto all = list_all(dir, &parent);
  if (name == ".") return dir.ino;
  if (name == "..") return parent;
  for (auto& e : all)
    if (e.name == name) return e.ino;
  return std::nullopt;
}

std::optional<uint64_t> Filesystem::lookup_hashed(const Inode& dir, const std::vector<BmapRecord>& map,
                                                  std::string_view name) {
  const uint32_t hash = da_hashname(reinterpret_cast<const uint8_t*>(name.data()), name.size());
  const uint32_t nfsb = 1u << sb_.dir_blk_log;
  const uint64_t leaf_fb = kDirLeafOffset >> sb_.block_log;

  // Scans leaf entries [base, base + 8*count) for `hash`; returns true when the run of
  // matching hashes reaches the end (the next leaf may hold more).
  std::optional<uint64_t> found;
  auto scan = [&](View& v, size_t base, size_t count) {
    size_t lo = 0, hi = count;
    while (lo < hi) {  // first entry with hashval >= hash
      size_t mid = (lo + hi) / 2;
      if (v.u32(base + mid * 8) < hash) lo = mid + 1;
      else hi = mid;
    }
    for (size_t i = lo; i < count; ++i) {
      if (v.u32(base + i * 8) != hash) return false;
      uint32_t addr = v.u32(base + i * 8 + 4);
      if (addr == 0) continue;  // stale entry
      if ((found = check_dataptr(dir, map, addr, name))) return false;
    }
    return true;
  };

  // Block form: the leaf array sits at the end of block 0.
  if (is_block_form(map, nfsb)) {
    uint64_t daddr = 0;
    auto b0 = read_dir_block(dir, map, 0, nfsb, &daddr);
    if (!b0) corrupt(fmt::format("directory inode {}: block 0 not mapped", dir.ino));
    parse_data_block(dir, *b0, daddr, true, nullptr, 0, nullptr);  // verifies the block
    View v(b0->data(), b0->size(), "directory inode", dir.ino, daddr);
    size_t count = v.u32(b0->size() - 8);
    scan(v, b0->size() - 8 - count * 8, count);
    return found;
  }

  auto blk = read_da_block(dir, map, leaf_fb, "leaf");
  std::set<uint64_t> seen{leaf_fb};
  int depth = 0;
  int level = -1;
  for (;;) {
    View v(blk.data(), blk.size(), "directory inode", dir.ino);
    uint16_t magic = v.u16(da3::magic);
    size_t count = v.u16(da3::count);
    if (magic == kDa3NodeMagic) {
      int lvl = v.u16(da3::level_or_stale);
      if (lvl < 1 || lvl > kDaNodeMaxDepth || (level >= 0 && lvl != level - 1))
        corrupt(fmt::format("directory inode {}: da node level {} (expected {}; btree cycle?)", dir.ino, lvl,
                            level - 1));
      if (count == 0 || da3::hdr_size + count * 8 > blk.size())
        corrupt(fmt::format("directory inode {}: da node with {} entries", dir.ino, count));
      if (++depth > kDaNodeMaxDepth) corrupt(fmt::format("directory inode {}: da btree too deep", dir.ino));
      size_t i = 0;
      while (i + 1 < count && v.u32(da3::hdr_size + i * 8) < hash) ++i;
      uint64_t child = v.u32(da3::hdr_size + i * 8 + 4);
      if (child < leaf_fb || !seen.insert(child).second)
        corrupt(fmt::format("directory inode {}: da node points at file block {} (btree cycle?)", dir.ino, child));
      level = lvl;
      blk = read_da_block(dir, map, child, "node");
      continue;
    }
    if (level > 1) corrupt(fmt::format("directory inode {}: leaf block below a level {} node", dir.ino, level));
    if (magic == kDir3Leaf1Magic) {
      if (level >= 0) corrupt(fmt::format("directory inode {}: leaf1 block under a da node", dir.ino));
      size_t best = v.u32(blk.size() - 4);
      if (da3::hdr_size + count * 8 + best * 2 + 4 > blk.size())
        corrupt(fmt::format("directory inode {}: leaf block with {} entries and {} bests", dir.ino, count, best));
      scan(v, da3::hdr_size, count);
      return found;
    }
    // LEAFN of a node directory; equal hashes may continue in the right sibling.
    if (da3::hdr_size + count * 8 > blk.size())
      corrupt(fmt::format("directory inode {}: leaf block with {} entries", dir.ino, count));
    if (!scan(v, da3::hdr_size, count) || found) return found;
    uint64_t forw = v.u32(da3::forw);
    if (forw == 0) return found;
    if (forw < leaf_fb || !seen.insert(forw).second)
      corrupt(fmt::format("directory inode {}: leaf sibling pointer {} loops", dir.ino, forw));
    blk = read_da_block(dir, map, forw, "leaf");
    if (View(blk.data(), blk.size(), "leaf").u16(da3::magic) != kDir3LeafnMagic)
      corrupt(fmt::format("directory inode {}: leaf sibling is not a leaf block", dir.ino));
    level = 1;
  }
}

std::optional<uint64_t> Filesystem::lookup(uint64_t dir_ino, std::string_view name) {
  Inode dir = inode(dir_ino);
  if (!dir.is_dir()) throw Error(Errc::invalid_argument, fmt::format("XFS: inode {} is not a directory", dir_ino));
  if (name.empty() || name.size() > 255 || name.find('/') != std::string_view::npos) return std::nullopt;
  if (dir.format == kFmtLocal) {
    if (name == ".") return dir_ino;
    return lookup_linear(dir, name);
  }
  auto map = bmap(dir);
  return lookup_hashed(dir, map, name);
}

DirInfo Filesystem::dir_info(uint64_t dir_ino) {
  Inode dir = inode(dir_ino);
  if (!dir.is_dir()) throw Error(Errc::invalid_argument, fmt::format("XFS: inode {} is not a directory", dir_ino));
  DirInfo d;
  d.fork_format = dir.format;
  if (dir.format == kFmtLocal) return d;
  auto map = bmap(dir);
  const uint64_t leaf_fb = kDirLeafOffset >> sb_.block_log, free_fb = kDirFreeOffset >> sb_.block_log;
  for (const auto& r : map) {
    uint64_t nb = r.block_count >> sb_.dir_blk_log;
    if (r.file_block >= free_fb) d.free_blocks += nb;
    else if (r.file_block >= leaf_fb) d.leaf_blocks += nb;
    else d.data_blocks += nb;
  }
  if (is_block_form(map, 1u << sb_.dir_blk_log)) {
    d.format = DirFormat::block;
    return d;
  }
  auto blk = read_da_block(dir, map, leaf_fb, "leaf");
  View v(blk.data(), blk.size(), "leaf");
  uint16_t magic = v.u16(da3::magic);
  if (magic == kDir3Leaf1Magic) {
    d.format = DirFormat::leaf;
  } else {
    d.format = DirFormat::node;
    d.node_levels = magic == kDa3NodeMagic ? v.u16(da3::level_or_stale) : 0;
  }
  return d;
}

}  // namespace aisio::extents::xfs
