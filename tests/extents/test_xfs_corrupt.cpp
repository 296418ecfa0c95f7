// Corrupted images: every damage must surface as a clear aisio::Error (never a crash,
// a hang or another exception type). The base image comes from mkfs.xfs -p (no
// mount); damage is applied in memory and read through a MemoryBlockReader.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "common/error.hpp"
#include "extents/block_reader.hpp"
#include "extents/crc32c.hpp"
#include "extents/helpers.hpp"
#include "extents/xfs.hpp"
#include "extents/xfs_format.hpp"

namespace {
using namespace aisio;
using namespace aisio::extents;
using namespace aisio::test;
namespace X = aisio::extents::xfs;
using X::be16;
using X::be32;
using X::be64;
using X::put_be16;
using X::put_be32;
using X::put_be64;

struct Base {
  std::string skip;
  std::unique_ptr<TempDir> tmp;
  std::string image;
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> file_data;
};

const Base& base() {
  static Base b = [] {
    Base r;
    if (!have_tool("mkfs.xfs")) {
      r.skip = "mkfs.xfs not installed (apt-get install xfsprogs)";
      return r;
    }
    r.tmp = std::make_unique<TempDir>();
    ProtoImage p(r.tmp->path());
    r.file_data.resize(20000);
    fill_random(r.file_data.data(), r.file_data.size(), 42);
    p.file("file", r.file_data);
    std::vector<uint8_t> d2(9000);
    fill_random(d2.data(), d2.size(), 43);
    p.file("file2", d2);
    p.dir("dir_block");
    for (int i = 0; i < 30; ++i) p.file("dir_block/entry" + std::to_string(i), {});
    p.dir("dir_sf");
    p.dir("dir_sf/child");
    p.file("dir_sf/child/leaf", {1, 2, 3});
    p.dir("dir_leaf");
    for (int i = 0; i < 120; ++i) p.file("dir_leaf/leaf_entry_name_" + std::to_string(i) + std::string(20, 'l'), {});
    p.dir("dir_node");  // 700 entries: more hash entries than one leaf block holds
    for (int i = 0; i < 700; ++i) p.file("dir_node/n" + std::to_string(i), {});
    p.symlink("sl", "file");
    r.image = *r.tmp / "base.img";
    if (auto err = p.make(r.image, 16ull << 20); !err.empty()) throw std::runtime_error("mkfs.xfs -p: " + err);
    r.bytes = read_bytes(r.image);
    return r;
  }();
  return b;
}

std::unique_ptr<X::Filesystem> open_mem(const std::vector<uint8_t>& img, bool crc = true) {
  return std::make_unique<X::Filesystem>(std::make_shared<MemoryBlockReader>(img), X::Options{crc});
}

#define NEED_BASE()                              \
  const Base& B = base();                        \
  if (!B.skip.empty()) GTEST_SKIP() << B.skip;   \
  auto clean = open_mem(B.bytes)

void fix_inode_crc(std::vector<uint8_t>& img, uint64_t byte, size_t isize) {
  xfs_update_cksum(img.data() + byte, isize, X::di::crc);
}

TEST(XfsCorrupt, CleanImageScans) {
  NEED_BASE();
  auto st = X::scan(*clean, {.read_bytes = 1 << 20});
  EXPECT_EQ(st.files, 2u + 30 + 1 + 120 + 700);
  EXPECT_EQ(st.dirs, 6u);  // /, dir_block, dir_sf, dir_sf/child, dir_leaf, dir_node
  EXPECT_EQ(st.symlinks, 1u);
  EXPECT_EQ(clean->read_file(clean->resolve("/file")), B.file_data);
  EXPECT_EQ(clean->dir_info(clean->resolve("/dir_node")).format, X::DirFormat::node);
  EXPECT_EQ(clean->dir_info(clean->resolve("/dir_leaf")).format, X::DirFormat::leaf);
}

TEST(XfsCorrupt, SuperblockCrc) {
  NEED_BASE();
  auto img = B.bytes;
  img[X::sb::fdblocks + 3] ^= 0x40;
  expect_error([&] { open_mem(img); }, Errc::protocol, "superblock CRC mismatch");
  EXPECT_NO_THROW(open_mem(img, false));  // structure is fine; only the checksum is off
}

TEST(XfsCorrupt, NotXfs) {
  NEED_BASE();
  auto img = B.bytes;
  std::memset(img.data(), 0, 4);
  expect_error([&] { open_mem(img); }, Errc::protocol, "not an XFS file system");
}

TEST(XfsCorrupt, UnsupportedFeaturesAreNamed) {
  NEED_BASE();
  size_t sect = be16(B.bytes.data() + X::sb::sectsize);
  auto with = [&](uint32_t incompat_or, uint16_t version) {
    auto img = B.bytes;
    put_be32(img.data() + X::sb::features_incompat, be32(img.data() + X::sb::features_incompat) | incompat_or);
    if (version) put_be16(img.data() + X::sb::versionnum, uint16_t((be16(img.data() + X::sb::versionnum) & ~0xf) | version));
    xfs_update_cksum(img.data(), sect, X::sb::crc);
    return img;
  };
  expect_error([&] { open_mem(with(X::kIncompatNeedsRepair, 0)); }, Errc::not_supported, "needsrepair");
  expect_error([&] { open_mem(with(X::kIncompatParent, 0)); }, Errc::not_supported, "parent");
  expect_error([&] { open_mem(with(X::kIncompatMetadir, 0)); }, Errc::not_supported, "metadir");
  expect_error([&] { open_mem(with(1u << 20, 0)); }, Errc::not_supported, "unknown incompat feature bits 0x100000");
  expect_error([&] { open_mem(with(0, 4)); }, Errc::not_supported, "version 4");
}

TEST(XfsCorrupt, InodeCrcAndMisdirection) {
  NEED_BASE();
  const auto& sb = clean->superblock();
  uint64_t ino = clean->resolve("/file"), ino2 = clean->resolve("/file2");
  uint64_t at = clean->inode_location(ino).byte, at2 = clean->inode_location(ino2).byte;
  {
    auto img = B.bytes;
    img[at + X::di::gen] ^= 1;
    auto fs = open_mem(img);
    EXPECT_NO_THROW(fs->list(fs->root()));
    expect_error([&] { fs->inode(ino); }, Errc::protocol, "inode " + std::to_string(ino) + ": CRC mismatch");
    expect_error([&] { fs->extents(ino); }, Errc::protocol, "CRC mismatch");
    expect_error([&] { fs->resolve("/file"); }, Errc::protocol, "CRC mismatch");
    expect_error([&] { X::scan(*fs); }, Errc::protocol, "CRC mismatch");
  }
  {  // a valid inode in the wrong slot
    auto img = B.bytes;
    std::memcpy(img.data() + at, img.data() + at2, sb.inode_size);
    expect_error([&] { open_mem(img)->inode(ino); }, Errc::protocol, "misdirected");
  }
  {  // extent count that cannot fit the fork, CRC fixed
    auto img = B.bytes;
    put_be32(img.data() + at + X::di::nextents, 1000);
    fix_inode_crc(img, at, sb.inode_size);
    expect_error([&] { open_mem(img)->inode(ino); }, Errc::protocol, "do not fit");
  }
  {  // an extent pointing outside the file system, CRC fixed
    auto img = B.bytes;
    uint8_t* rec = img.data() + at + X::di::core_size;
    uint64_t l0 = be64(rec), l1 = be64(rec + 8);
    l0 |= 0x1ff;  // startblock high bits
    put_be64(rec, l0);
    put_be64(rec + 8, l1);
    fix_inode_crc(img, at, sb.inode_size);
    expect_error([&] { open_mem(img)->extents(ino); }, Errc::protocol, "outside the file system");
  }
  {  // a free inode (mode 0) reached through a directory entry
    auto img = B.bytes;
    put_be16(img.data() + at + X::di::mode, 0);
    fix_inode_crc(img, at, sb.inode_size);
    expect_error([&] { open_mem(img)->resolve("/file"); }, Errc::protocol, "not in use");
  }
}

TEST(XfsCorrupt, DirectoryBlocks) {
  NEED_BASE();
  uint64_t d = clean->resolve("/dir_block");
  auto recs = clean->bmap(d);
  ASSERT_EQ(recs.size(), 1u);
  uint64_t at = clean->fsblock_to_byte(recs[0].start_block);
  {
    auto img = B.bytes;
    img[at + 200] ^= 0x10;
    auto fs = open_mem(img);
    expect_error([&] { fs->list(d); }, Errc::protocol, "CRC mismatch");
    expect_error([&] { fs->lookup(d, "entry3"); }, Errc::protocol, "CRC mismatch");
    expect_error([&] { fs->resolve("/dir_block/entry3"); }, Errc::protocol, "CRC mismatch");
  }
  {  // a name length that breaks the entry chain (CRC recomputed)
    auto img = B.bytes;
    size_t bs = clean->superblock().block_size;
    // First entry after the 64-byte header is ".": make its name 255 bytes long.
    img[at + 64 + 8] = 255;
    xfs_update_cksum(img.data() + at, bs, X::dir3::crc);
    auto fs = open_mem(img);
    expect_error([&] { fs->list(d); }, Errc::protocol, "entry tag mismatch at offset 64");
  }
  {  // a free-space record running past the data area
    auto img = B.bytes;
    size_t bs = clean->superblock().block_size;
    put_be16(img.data() + at + 64, 0xffff);
    put_be16(img.data() + at + 66, 0xfff8);
    xfs_update_cksum(img.data() + at, bs, X::dir3::crc);
    expect_error([&] { open_mem(img)->list(d); }, Errc::protocol, "bad free space");
  }
  {  // a hash index entry pointing into the header
    auto img = B.bytes;
    size_t bs = clean->superblock().block_size;
    uint32_t count = be32(img.data() + at + bs - 8);
    for (uint32_t i = 0; i < count; ++i) put_be32(img.data() + at + bs - 8 - count * 8 + i * 8 + 4, 1);
    xfs_update_cksum(img.data() + at, bs, X::dir3::crc);
    auto fs = open_mem(img);
    EXPECT_NO_THROW(fs->list(d));  // data entries are intact
    expect_error([&] { fs->lookup(d, "entry7"); }, Errc::protocol, "bad offset");
  }
}

TEST(XfsCorrupt, TruncatedImage) {
  NEED_BASE();
  std::vector<uint8_t> half(B.bytes.begin(), B.bytes.begin() + B.bytes.size() / 2);
  expect_error([&] { open_mem(half); }, Errc::protocol, "truncated image?");
  std::vector<uint8_t> tiny(B.bytes.begin(), B.bytes.begin() + 100);
  expect_error([&] { open_mem(tiny); }, Errc::protocol, "too small");
  // A real truncated file through the file reader.
  TempDir t;
  std::string p = t / "trunc.img";
  write_bytes(p, std::vector<uint8_t>(B.bytes.begin(), B.bytes.begin() + long(B.bytes.size() / 3)));
  expect_error([&] { X::Filesystem::open(p); }, Errc::protocol, "truncated image?");
  // Reads past the end of a window are I/O errors naming the range.
  MemoryBlockReader m(half);
  uint8_t buf[16];
  expect_error([&] { m.read(half.size() - 8, buf, 16); }, Errc::io, "past the end");
}

TEST(XfsCorrupt, DirectoryLoopIsDetected) {
  NEED_BASE();
  const auto& sb = clean->superblock();
  uint64_t sf = clean->resolve("/dir_sf");
  ASSERT_EQ(clean->inode(sf).format, X::kFmtLocal);
  uint64_t at = clean->inode_location(sf).byte;
  auto img = B.bytes;
  uint8_t* fork = img.data() + at + X::di::core_size;
  ASSERT_EQ(fork[1], 0);  // 4-byte inode numbers
  // Entry: namelen, offset[2], name, ftype, ino[4]
  size_t p = 6;
  ASSERT_EQ(fork[0], 1);
  ASSERT_EQ(std::string(reinterpret_cast<char*>(fork + p + 3), fork[p]), "child");
  put_be32(fork + p + 3 + fork[p] + 1, uint32_t(clean->root()));  // child -> the root directory
  fix_inode_crc(img, at, sb.inode_size);
  auto fs = open_mem(img);
  EXPECT_EQ(fs->resolve("/dir_sf/child/dir_sf/child"), fs->root());  // a path is fine
  expect_error([&] { fs->walk(fs->root(), [](const X::WalkEntry&) {}); }, Errc::protocol, "directory loop");
  expect_error([&] { X::scan(*fs); }, Errc::protocol, "directory loop");
}

// Turns /file's one-extent data fork into a two-level bmbt: root in the inode
// (level 2) -> node block (level 1) -> leaf block (level 0) holding the record.
struct Crafted {
  std::vector<uint8_t> img;
  uint64_t ino, inode_at, node_fsb, leaf_fsb, node_at, leaf_at;
  size_t bs, root_ptr_off, node_ptr_off;
};

Crafted craft_bmbt(const Base& B, X::Filesystem& clean) {
  Crafted c;
  c.img = B.bytes;
  const auto& sb = clean.superblock();
  c.bs = sb.block_size;
  c.ino = clean.resolve("/file");
  X::Inode in = clean.inode(c.ino);
  EXPECT_EQ(in.format, X::kFmtExtents);
  EXPECT_EQ(in.nextents, 1u);
  c.inode_at = clean.inode_location(c.ino).byte;
  // Two free (all-zero) blocks from the end of the file system, outside the log.
  std::vector<uint64_t> freeb;
  for (uint64_t b = sb.data_blocks - 1; b > 0 && freeb.size() < 2; --b) {
    uint64_t agno = b / sb.ag_blocks, agbno = b % sb.ag_blocks;
    uint64_t fsb = (agno << sb.ag_blk_log) | agbno;
    if (fsb >= sb.log_start && fsb < sb.log_start + sb.log_blocks) continue;
    uint64_t at = b * c.bs;
    if (std::all_of(c.img.begin() + long(at), c.img.begin() + long(at + c.bs), [](uint8_t v) { return v == 0; }))
      freeb.push_back(fsb);
  }
  EXPECT_EQ(freeb.size(), 2u);
  c.node_fsb = freeb[0];
  c.leaf_fsb = freeb[1];
  c.node_at = clean.fsblock_to_byte(c.node_fsb);
  c.leaf_at = clean.fsblock_to_byte(c.leaf_fsb);
  auto header = [&](uint64_t at, uint16_t level) {
    uint8_t* b = c.img.data() + at;
    std::memset(b, 0, c.bs);
    put_be32(b + X::lblock::magic, X::kBmap3Magic);
    put_be16(b + X::lblock::level, level);
    put_be16(b + X::lblock::numrecs, 1);
    put_be64(b + X::lblock::leftsib, ~0ull);
    put_be64(b + X::lblock::rightsib, ~0ull);
    put_be64(b + X::lblock::blkno, at / 512);
    std::memcpy(b + X::lblock::uuid, sb.meta_uuid, 16);
    put_be64(b + X::lblock::owner, c.ino);
  };
  uint8_t* fork = c.img.data() + c.inode_at + X::di::core_size;
  header(c.leaf_at, 0);
  std::memcpy(c.img.data() + c.leaf_at + X::lblock::hdr_size, fork, 16);  // the extent record
  header(c.node_at, 1);
  size_t maxrecs = (c.bs - X::lblock::hdr_size) / 16;
  c.node_ptr_off = X::lblock::hdr_size + maxrecs * 8;
  put_be64(c.img.data() + c.node_at + X::lblock::hdr_size, 0);  // key: startoff 0
  put_be64(c.img.data() + c.node_at + c.node_ptr_off, c.leaf_fsb);
  xfs_update_cksum(c.img.data() + c.leaf_at, c.bs, X::lblock::crc);
  xfs_update_cksum(c.img.data() + c.node_at, c.bs, X::lblock::crc);
  size_t dsize = in.data_fork.size();
  size_t rootmax = (dsize - 4) / 16;
  c.root_ptr_off = 4 + rootmax * 8;
  std::memset(fork, 0, dsize);
  put_be16(fork, 2);  // level
  put_be16(fork + 2, 1);
  put_be64(fork + 4, 0);
  put_be64(fork + c.root_ptr_off, c.node_fsb);
  c.img[c.inode_at + X::di::format] = X::kFmtBtree;
  put_be64(c.img.data() + c.inode_at + X::di::nblocks, in.nblocks + 2);
  fix_inode_crc(c.img, c.inode_at, sb.inode_size);
  return c;
}

TEST(XfsCorrupt, CraftedBmbtIsValidThenCyclesAreCaught) {
  NEED_BASE();
  auto want = clean->extents(clean->resolve("/file"));
  Crafted c = craft_bmbt(B, *clean);
  {
    auto fs = open_mem(c.img);
    EXPECT_EQ(fs->inode(c.ino).format, X::kFmtBtree);
    EXPECT_EQ(fs->extents(c.ino), want);
    EXPECT_EQ(fs->read_file(c.ino), B.file_data);
  }
  if (have_tool("xfs_db")) {  // xfs_db reads our hand-made btree the same way
    TempDir t;
    std::string p = t / "crafted.img";
    write_bytes(p, c.img);
    auto db = xfs_db_bmap(p, c.ino);
    ASSERT_EQ(db.size(), 1u);
    EXPECT_EQ(db[0].count * c.bs, want[0].length);
  }
  auto mutate = [&](auto&& edit, uint64_t block_at) {
    auto img = c.img;
    edit(img);
    if (block_at) xfs_update_cksum(img.data() + block_at, c.bs, X::lblock::crc);
    fix_inode_crc(img, c.inode_at, clean->superblock().inode_size);
    return img;
  };
  // The node points at itself: a cycle, caught by the level check.
  auto self = mutate([&](auto& img) { put_be64(img.data() + c.node_at + c.node_ptr_off, c.node_fsb); }, c.node_at);
  expect_error([&] { open_mem(self)->extents(c.ino); }, Errc::protocol, "btree cycle");
  // The root lists the node twice: a block reached twice.
  auto twice = mutate(
      [&](auto& img) {
        uint8_t* fork = img.data() + c.inode_at + X::di::core_size;
        put_be16(fork + 2, 2);
        put_be64(fork + 4 + 8, 0);
        put_be64(fork + c.root_ptr_off + 8, c.node_fsb);
      },
      0);
  expect_error([&] { open_mem(twice)->extents(c.ino); }, Errc::protocol, "reached twice");
  // Leaf owned by another inode.
  auto owner = mutate([&](auto& img) { put_be64(img.data() + c.leaf_at + X::lblock::owner, c.ino + 1); }, c.leaf_at);
  expect_error([&] { open_mem(owner)->extents(c.ino); }, Errc::protocol, "owned by inode");
  // Record count beyond what a block holds.
  auto many = mutate([&](auto& img) { put_be16(img.data() + c.leaf_at + X::lblock::numrecs, 300); }, c.leaf_at);
  expect_error([&] { open_mem(many)->extents(c.ino); }, Errc::protocol, "records (max");
  // di_nextents disagrees with the tree.
  auto count = mutate([&](auto& img) { put_be32(img.data() + c.inode_at + X::di::nextents, 2); }, 0);
  expect_error([&] { open_mem(count)->extents(c.ino); }, Errc::protocol, "di_nextents");
  // Bad CRC on the leaf.
  auto crc = c.img;
  crc[c.leaf_at + 100] ^= 1;
  expect_error([&] { open_mem(crc)->extents(c.ino); }, Errc::protocol, "CRC mismatch");
  // Root level beyond the maximum.
  auto deep = mutate([&](auto& img) { put_be16(img.data() + c.inode_at + X::di::core_size, 12); }, 0);
  expect_error([&] { open_mem(deep)->extents(c.ino); }, Errc::protocol, "bad level");
}

TEST(XfsCorrupt, DaBtreeCycleInNodeDirectory) {
  NEED_BASE();
  uint64_t d = clean->resolve("/dir_node");
  const auto& sb = clean->superblock();
  uint64_t leaf_fb = X::kDirLeafOffset >> sb.block_log;
  uint64_t at = 0;
  for (auto& r : clean->bmap(d))
    if (r.file_block <= leaf_fb && leaf_fb < r.file_block + r.block_count)
      at = clean->fsblock_to_byte(r.start_block + (leaf_fb - r.file_block));
  ASSERT_NE(at, 0u);
  auto img = B.bytes;
  uint8_t* b = img.data() + at;
  ASSERT_EQ(be16(b + X::da3::magic), X::kDa3NodeMagic);
  uint16_t count = be16(b + X::da3::count);
  for (uint16_t i = 0; i < count; ++i) put_be32(b + X::da3::hdr_size + i * 8 + 4, uint32_t(leaf_fb));
  xfs_update_cksum(b, sb.dir_block_size, X::da3::crc);
  auto fs = open_mem(img);
  EXPECT_EQ(fs->list(d).size(), 700u);  // the data blocks are intact
  expect_error([&] { fs->lookup(d, "n7"); }, Errc::protocol, "btree cycle");
  expect_error([&] { X::scan(*fs); }, Errc::protocol, "btree cycle");
}

TEST(XfsCorrupt, CachedUntilReread) {
  NEED_BASE();
  TempDir t;
  std::string p = t / "live.img";
  write_bytes(p, B.bytes);
  auto fs = X::Filesystem::open(p);
  uint64_t ino = fs->resolve("/file");
  auto ext = fs->extents(ino);
  // Damage the inode on disk behind the decoder's back.
  int fd = ::open(p.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  uint8_t junk[16] = {0xde, 0xad};
  ASSERT_EQ(::pwrite(fd, junk, sizeof junk, off_t(fs->inode_location(ino).byte + X::di::core_size)), 16);
  ::close(fd);
  EXPECT_EQ(fs->extents(ino), ext);  // cached
  expect_error([&] { fs->extents(ino, true); }, Errc::protocol, "CRC mismatch");  // re-read on request
  fs->refresh();
  expect_error([&] { fs->inode(ino); }, Errc::protocol, "CRC mismatch");
}

// A small in-process fuzzer: flip bytes inside the metadata the decoder reads, with
// CRC checking on and off, and decode everything. Only aisio::Error may come out.
TEST(XfsCorrupt, RandomMetadataDamage) {
  NEED_BASE();
  auto img = B.bytes;
  ASSERT_EQ(clean->dir_info(clean->resolve("/dir_node")).format, X::DirFormat::node);
  ASSERT_EQ(clean->dir_info(clean->resolve("/dir_leaf")).format, X::DirFormat::leaf);
  const auto& sb = clean->superblock();
  std::vector<std::pair<uint64_t, size_t>> regions{{0, sb.sector_size},
                                                   {sb.sector_size, sb.sector_size},
                                                   {2ull * sb.sector_size, sb.sector_size}};
  clean->walk(clean->root(), [&](const X::WalkEntry& w) {
    if (w.path.rfind("dir_node/", 0) == 0 && w.path.size() % 7) return;  // a sample
    regions.push_back({clean->inode_location(w.entry.ino).byte, sb.inode_size});
  });
  regions.push_back({clean->inode_location(clean->root()).byte, sb.inode_size});
  for (const char* d : {"/dir_block", "/dir_leaf", "/dir_node"})
    for (auto& r : clean->bmap(clean->resolve(d)))
      for (uint64_t i = 0; i < r.block_count && i < 8; ++i)
        regions.push_back({clean->fsblock_to_byte(r.start_block + i), sb.block_size});
  std::mt19937_64 rng(12345);
  int errors = 0, clean_runs = 0;
  const int iters = getenv("AISIO_FUZZ_ITERS") ? atoi(getenv("AISIO_FUZZ_ITERS")) : 150;
  for (int it = 0; it < iters; ++it) {
    std::vector<std::pair<uint64_t, uint8_t>> undo;
    int flips = 1 + int(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      auto [at, len] = regions[rng() % regions.size()];
      uint64_t off = at + rng() % len;
      undo.push_back({off, img[off]});
      switch (rng() % 3) {
        case 0: img[off] ^= uint8_t(1u << (rng() % 8)); break;
        case 1: img[off] = uint8_t(rng()); break;
        default: img[off] = (rng() & 1) ? 0xff : 0; break;
      }
    }
    bool crc = rng() % 4 == 0;
    try {
      auto fs = open_mem(img, crc);
      X::scan(*fs, {.max_entries = 4000, .max_lookups_per_dir = 50, .read_bytes = 8192});
      fs->resolve("/dir_sf/child/leaf");
      ++clean_runs;
    } catch (const Error&) {
      ++errors;
    }
    for (auto it2 = undo.rbegin(); it2 != undo.rend(); ++it2) img[it2->first] = it2->second;
  }
  EXPECT_GT(errors, iters / 4);
  RecordProperty("errors", errors);
  RecordProperty("clean", clean_runs);
}

}  // namespace
