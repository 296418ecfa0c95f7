// The decoder against images built by `mkfs.xfs -p protofile` (no mount needed, so
// these run wherever mkfs.xfs exists): listing, types, symlinks, directory formats,
// extents compared with xfs_db's bmap, contents compared with the source files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <set>

#include "common/error.hpp"
#include "extents/block_reader.hpp"
#include "extents/helpers.hpp"
#include "extents/translate.hpp"
#include "extents/xfs.hpp"
#include "extents/xfs_format.hpp"

namespace {
using namespace aisio;
using namespace aisio::extents;
using namespace aisio::test;
namespace X = aisio::extents::xfs;

std::vector<uint8_t> bytes(size_t n, uint64_t seed) {
  std::vector<uint8_t> b(n);
  fill_random(b.data(), n, seed);
  return b;
}

struct ProtoFixture {
  std::string skip;
  std::unique_ptr<TempDir> tmp;
  std::unique_ptr<ProtoImage> proto;
  std::string image;
};

const ProtoFixture& proto_fixture() {
  static ProtoFixture fx = [] {
    ProtoFixture f;
    if (!have_tool("mkfs.xfs")) {
      f.skip = "mkfs.xfs not installed (apt-get install xfsprogs)";
      return f;
    }
    f.tmp = std::make_unique<TempDir>();
    f.proto = std::make_unique<ProtoImage>(f.tmp->path());
    auto& p = *f.proto;
    p.file("empty", {});
    p.file("tiny", bytes(100, 1));
    p.file("oneblock", bytes(4096, 2));
    p.file("large", bytes(3 << 20, 3), 0600);
    p.file("unaligned", bytes(12345, 4));
    p.dir("sub", 0700);
    p.file("sub/inner", bytes(5000, 5));
    p.fifo("sub/fifo");
    p.chardev("sub/null", 1, 3);
    p.dir("sub/deeper");
    p.symlink("sub/deeper/up", "../../large");
    p.dir("dir_block");
    for (int i = 0; i < 50; ++i) p.file("dir_block/e" + std::to_string(i), {});
    p.dir("dir_leaf");
    for (int i = 0; i < 400; ++i) {
      char n[64];
      snprintf(n, sizeof n, "leaf_entry_name_padded_to_forty_chars_%03d", i);
      p.file(std::string("dir_leaf/") + n, {});
    }
    p.dir("dir_node");
    for (int i = 0; i < 1500; ++i)
      p.file("dir_node/" + std::to_string(10000 + i) + std::string(200, 'a' + i % 26), i % 50 ? std::vector<uint8_t>{}
                                                                                              : bytes(700, 100 + i));
    p.symlink("sl_inline", "large");
    // No remote (> inline size) symlinks here: mkfs.xfs 6.1's protofile writes them
    // without the v5 block header, and the kernel rejects them as corrupt (so does
    // the decoder). The mounted-image tests cover kernel-written remote symlinks.
    p.symlink("loop_a", "loop_b");
    p.symlink("loop_b", "loop_a");
    f.image = *f.tmp / "proto.img";
    if (auto err = p.make(f.image, 48ull << 20); !err.empty()) throw std::runtime_error("mkfs.xfs -p: " + err);
    return f;
  }();
  return fx;
}

X::FileType type_of(char t) {
  switch (t) {
    case '-': return X::FileType::regular;
    case 'd': return X::FileType::directory;
    case 'l': return X::FileType::symlink;
    case 'p': return X::FileType::fifo;
    case 'c': return X::FileType::chardev;
  }
  return X::FileType::unknown;
}

#define NEED_PROTO()                                  \
  const ProtoFixture& P = proto_fixture();            \
  if (!P.skip.empty()) GTEST_SKIP() << P.skip;        \
  X::Filesystem xfs(open_block_reader(P.image))

TEST(XfsProtofile, TreeMatchesProtofile) {
  NEED_PROTO();
  std::map<std::string, X::DirEntry> seen;
  xfs.walk(xfs.root(), [&](const X::WalkEntry& w) { seen[w.path] = w.entry; });
  ASSERT_EQ(seen.size(), P.proto->entries().size());
  for (const auto& [path, n] : P.proto->entries()) {
    SCOPED_TRACE(path);
    ASSERT_TRUE(seen.count(path));
    const auto& e = seen[path];
    EXPECT_EQ(e.type, type_of(n.type));
    X::Inode in = xfs.inode(e.ino);
    EXPECT_EQ(in.mode & 07777, n.mode);
    EXPECT_EQ(in.type(), type_of(n.type));
    EXPECT_EQ(xfs.resolve(path, {.follow_final = false}), e.ino);
    if (n.type == '-') {
      EXPECT_EQ(in.size, n.data.size());
      EXPECT_EQ(xfs.read_file(e.ino), n.data);
    } else if (n.type == 'l') {
      EXPECT_EQ(xfs.readlink(e.ino), n.arg);
    } else if (n.type == 'c') {
      EXPECT_NE(in.rdev, 0u);
    }
  }
  EXPECT_EQ(xfs.resolve("/sl_inline"), seen["large"].ino);
  EXPECT_EQ(xfs.resolve("/sub/deeper/up"), seen["large"].ino);
  expect_error([&] { xfs.resolve("/loop_a"); }, Errc::invalid_argument,
               "XFS: /loop_a: too many levels of symbolic links (symlink loop?)");
  auto stats = X::scan(xfs);
  EXPECT_EQ(stats.files + stats.dirs + stats.symlinks + stats.special, P.proto->entries().size() + 1);
  EXPECT_EQ(stats.lookups, P.proto->entries().size());
}

TEST(XfsProtofile, DirectoryFormats) {
  NEED_PROTO();
  EXPECT_EQ(xfs.dir_info(xfs.resolve("/sub")).format, X::DirFormat::shortform);
  EXPECT_EQ(xfs.dir_info(xfs.resolve("/dir_block")).format, X::DirFormat::block);
  EXPECT_EQ(xfs.dir_info(xfs.resolve("/dir_leaf")).format, X::DirFormat::leaf);
  auto node = xfs.dir_info(xfs.resolve("/dir_node"));
  EXPECT_EQ(node.format, X::DirFormat::node);
  EXPECT_GE(node.node_levels, 1);
}

TEST(XfsProtofile, ExtentsMatchXfsDb) {
  NEED_PROTO();
  if (!have_tool("xfs_db")) GTEST_SKIP() << "xfs_db not installed";
  const auto& sb = xfs.superblock();
  FileBlockReader image(P.image);
  int checked = 0;
  for (const auto& [path, n] : P.proto->entries()) {
    if (n.type != '-' && n.type != 'd') continue;
    if (path.rfind("dir_node/", 0) == 0 && n.data.empty()) continue;
    if (path.rfind("dir_leaf/", 0) == 0 || path.rfind("dir_block/", 0) == 0) continue;
    SCOPED_TRACE(path);
    uint64_t ino = xfs.resolve(path, {.follow_final = false});
    auto recs = xfs.bmap(ino);
    auto db = xfs_db_bmap(P.image, ino);
    ASSERT_EQ(recs.size(), db.size());
    for (size_t i = 0; i < db.size(); ++i) {
      EXPECT_EQ(recs[i].file_block, db[i].file_block);
      EXPECT_EQ(recs[i].start_block, db[i].start_block);
      EXPECT_EQ(recs[i].block_count, db[i].count);
      EXPECT_EQ(recs[i].unwritten, db[i].unwritten);
    }
    if (n.type == '-') {
      auto ext = xfs.extents(ino);
      ASSERT_EQ(ext.size(), db.size());
      for (size_t i = 0; i < db.size(); ++i) {
        EXPECT_EQ(ext[i].logical, db[i].file_block * sb.block_size);
        EXPECT_EQ(ext[i].length, db[i].count * sb.block_size);
        EXPECT_EQ(ext[i].physical, xfs.fsblock_to_byte(db[i].start_block));
        EXPECT_EQ(ext[i].has(kExtLast), i + 1 == db.size());
      }
      std::vector<uint8_t> buf(n.data.size());
      read_file_range(image, ext, 0, buf.size(), TranslateOptions{.lba_size = 4096, .file_size = buf.size()},
                      buf.data());
      EXPECT_EQ(buf, n.data);
    }
    ++checked;
  }
  EXPECT_GE(checked, 40);
}

}  // namespace

namespace {

// Other mkfs geometries and feature sets: multi-block directory blocks (1 KiB blocks,
// 8 KiB directory blocks), 4 KiB sectors, 64 KiB directory blocks, nrext64, rmapbt,
// no sparse inodes / reflink / finobt. Each image is scanned, compared with xfs_db
// and read back.
class XfsGeometry : public ::testing::TestWithParam<const char*> {};

TEST_P(XfsGeometry, DecodesAndMatchesXfsDb) {
  if (!have_tool("mkfs.xfs")) GTEST_SKIP() << "mkfs.xfs not installed (apt-get install xfsprogs)";
  TempDir t;
  ProtoImage p(t.path());
  std::map<std::string, std::vector<uint8_t>> files;
  auto add = [&](const std::string& path, size_t n, uint64_t seed) {
    files[path] = bytes(n, seed);
    p.file(path, files[path]);
  };
  add("a", 70000, 1);
  add("b", 1, 2);
  p.dir("d_leaf");
  for (int i = 0; i < 300; ++i) p.file("d_leaf/entry_with_a_name_of_moderate_size_" + std::to_string(i), {});
  p.dir("d_node");
  for (int i = 0; i < 2500; ++i) p.file("d_node/" + std::to_string(i) + std::string(60, 'z'), {});
  add("d_node/data", 5000, 3);
  p.symlink("s", "d_node/data");
  std::string img = t / "g.img";
  ASSERT_EQ(p.make(img, 64ull << 20, GetParam()), "");
  X::Filesystem xfs(open_block_reader(img));
  auto st = X::scan(xfs, {.read_bytes = 1 << 20});
  EXPECT_EQ(st.files, 2u + 300 + 2500 + 1);
  EXPECT_EQ(st.lookups, 2u + 300 + 2500 + 1 + 2 + 1);
  for (auto& [path, data] : files) {
    SCOPED_TRACE(path);
    uint64_t ino = xfs.resolve(path);
    EXPECT_EQ(xfs.read_file(ino), data);
    auto recs = xfs.bmap(ino);
    auto db = xfs_db_bmap(img, ino);
    ASSERT_EQ(recs.size(), db.size());
    for (size_t i = 0; i < db.size(); ++i) {
      EXPECT_EQ(recs[i].start_block, db[i].start_block);
      EXPECT_EQ(recs[i].block_count, db[i].count);
    }
  }
  EXPECT_EQ(xfs.resolve("/s"), xfs.resolve("/d_node/data"));
  // 2500 hash entries (20 KB) need several leaf blocks, except with 64 KiB ones.
  EXPECT_EQ(xfs.dir_info(xfs.resolve("/d_node")).format,
            xfs.superblock().dir_block_size < 65536 ? X::DirFormat::node : X::DirFormat::leaf);
  auto leaf = xfs.dir_info(xfs.resolve("/d_leaf")).format;
  EXPECT_TRUE(leaf == X::DirFormat::leaf || leaf == X::DirFormat::block) << X::dir_format_name(leaf);
  RecordProperty("block_size", int(xfs.superblock().block_size));
  RecordProperty("dir_block_size", int(xfs.superblock().dir_block_size));
}

INSTANTIATE_TEST_SUITE_P(Mkfs, XfsGeometry,
                         ::testing::Values("-b size=1024 -n size=8192", "-s size=4096", "-n size=65536",
                                           "-i nrext64=1", "-m rmapbt=1", "-i sparse=0 -m reflink=0,finobt=0"));

TEST(XfsProtofile, V4IsRefusedByName) {
  if (!have_tool("mkfs.xfs")) GTEST_SKIP() << "mkfs.xfs not installed (apt-get install xfsprogs)";
  TempDir t;
  std::string img = t / "v4.img";
  write_bytes(img, {});
  ASSERT_EQ(::truncate(img.c_str(), 32 << 20), 0);
  if (auto err = fil::mkfs_xfs(img, "-m crc=0"); !err.empty()) GTEST_SKIP() << "mkfs.xfs cannot make v4: " << err;
  try {
    X::Filesystem::open(img);
    ADD_FAILURE() << "v4 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::not_supported);
    EXPECT_NE(std::string(e.what()).find("version 4"), std::string::npos) << e.what();
  }
}

}  // namespace
