// End to end: build an XFS image with mkfs.xfs, loop-mount it (at a 1 MiB offset in
// the image file, like a partition), populate it with every layout the decoder must
// handle, remount, record what the kernel says (readdir, stat, FIEMAP, xfs_bmap,
// file contents), unmount, then check the on-disk decoder and the LBA translator
// against all of it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <functional>
#include <map>
#include <set>

#include "common/error.hpp"
#include "extents/block_reader.hpp"
#include "extents/device.hpp"
#include "extents/fiemap.hpp"
#include "extents/helpers.hpp"
#include "extents/translate.hpp"
#include "extents/xfs.hpp"
#include "extents/xfs_format.hpp"

namespace {
using namespace aisio;
using namespace aisio::extents;
using namespace aisio::test;
namespace X = aisio::extents::xfs;
namespace fs = std::filesystem;

constexpr uint64_t kImageSize = 128ull << 20;
constexpr uint64_t kFsOffset = 1ull << 20;
constexpr int kNodeDirEntries = 3000;

struct HostEntry {
  uint64_t ino = 0;
  X::FileType type = X::FileType::unknown;
  struct stat st {};
  std::vector<Extent> fiemap;      // regular files
  std::vector<Extent> bmap;        // regular files: xfs_bmap -vp
  uint64_t hash = 0;               // regular files: XXH64 of the contents
  std::string target;              // symlinks
  std::vector<std::string> names;  // directories: readdir without . and ..
};

struct Fixture {
  std::string skip;
  std::unique_ptr<TempDir> tmp;
  std::string image;
  BlockDevice dev;
  uint64_t root_ino = 0;
  std::map<std::string, HostEntry> entries;  // relative path -> what the kernel said
  // Delalloc: FIEMAP without sync on freshly written data, and translate()'s answer.
  bool saw_delalloc = false;
  std::string delalloc_error;
  bool sync_cleared_delalloc = false;
  // Listing and root read straight from the loop block device after umount.
  std::vector<X::DirEntry> root_via_blockdev;
};

X::FileType type_of(mode_t m) { return X::file_type_from_mode(uint16_t(m)); }

void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what + ": " + strerror(errno));
}

void write_all(int fd, const void* p, size_t n, off_t off) {
  auto* b = static_cast<const uint8_t*>(p);
  while (n) {
    ssize_t w = ::pwrite(fd, b, n, off);
    check(w > 0, "pwrite");
    b += w;
    n -= size_t(w);
    off += w;
  }
}

void make_file(const std::string& path, size_t size, uint64_t seed, bool sync = false) {
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  check(fd >= 0, "create " + path);
  std::vector<uint8_t> b(size);
  fill_random(b.data(), b.size(), seed);
  if (size) write_all(fd, b.data(), b.size(), 0);
  if (sync) check(::fsync(fd) == 0, "fsync");
  ::close(fd);
}

// Four files fragmented by interleaved O_DIRECT appends (fsync after each), so each
// ends with 24 extents and a btree data fork. That needs the four in one allocation
// group. The allocator only trylocks an AG's free-space header on its first pass, so
// when the flusher is writing back the buffered files above at that moment, a file's
// first block can land in another AG, where it then grows contiguously (seen once under
// ctest -j2). Hence: write back everything first, and check the layout (FIEMAP after
// fsync is exact); a set that did not fragment is made again, at most four times.
void make_fragmented(const std::string& m) {
  constexpr int kFiles = 4, kAppends = 24;
  constexpr size_t kChunk = 16384;
  void* buf = std::aligned_alloc(4096, kChunk);
  for (int attempt = 1;; ++attempt) {
    ::sync();
    std::vector<int> fds;
    for (int i = 0; i < kFiles; ++i) {
      std::string path = m + "/frag" + std::to_string(i);
      ::unlink(path.c_str());
      int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_DIRECT, 0644);
      check(fd >= 0, "open frag");
      fds.push_back(fd);
    }
    for (int r = 0; r < kAppends; ++r)
      for (size_t i = 0; i < fds.size(); ++i) {
        fill_random(static_cast<uint8_t*>(buf), kChunk, 100 + r * 8 + i);
        write_all(fds[i], buf, kChunk, off_t(r) * off_t(kChunk));
        check(::fsync(fds[i]) == 0, "fsync");
      }
    size_t fewest = SIZE_MAX;
    for (int fd : fds) {
      fewest = std::min(fewest, fiemap(fd).size());
      ::close(fd);
    }
    if (fewest >= size_t(kAppends - 2)) break;
    if (attempt == 4) {
      std::free(buf);
      throw std::runtime_error("frag0..3: " + std::to_string(attempt) +
                               " tries, a file still had only " + std::to_string(fewest) + " extents");
    }
    std::fprintf(stderr, "frag0..3: a file got %zu extents (attempt %d): made again\n", fewest, attempt);
  }
  std::free(buf);
}

void populate(const std::string& m, Fixture& fx) {
  make_file(m + "/empty", 0, 1);
  make_file(m + "/tiny", 100, 2);
  make_file(m + "/oneblock", 4096, 3);
  make_file(m + "/large", 5u << 20, 4);

  make_fragmented(m);
  {  // bmbt: every other block of 1200 blocks -> 600 extents, a btree data fork
    int fd = ::open((m + "/bmbt").c_str(), O_CREAT | O_WRONLY, 0644);
    check(fd >= 0, "open bmbt");
    std::vector<uint8_t> b(4096);
    for (int i = 0; i < 1200; i += 2) {
      fill_random(b.data(), b.size(), 1000 + i);
      write_all(fd, b.data(), b.size(), off_t(i) * 4096);
      if (i % 100 == 0) check(::fsync(fd) == 0, "fsync");
    }
    check(::fsync(fd) == 0, "fsync");
    ::close(fd);
  }
  {  // sparse: data islands, unaligned tail, a hole to EOF
    int fd = ::open((m + "/sparse").c_str(), O_CREAT | O_WRONLY, 0644);
    check(fd >= 0, "open sparse");
    std::vector<uint8_t> b(8192);
    fill_random(b.data(), b.size(), 5);
    write_all(fd, b.data(), 8192, 0);
    write_all(fd, b.data(), 4096, 1 << 20);
    write_all(fd, b.data(), 5000, (3 << 20) + 100);
    check(::ftruncate(fd, 6 << 20) == 0, "ftruncate");
    check(::fsync(fd) == 0, "fsync");
    ::close(fd);
  }
  {  // preallocated: unwritten around one written block, plus KEEP_SIZE past EOF
    int fd = ::open((m + "/prealloc").c_str(), O_CREAT | O_WRONLY, 0644);
    check(fd >= 0, "open prealloc");
    check(::fallocate(fd, 0, 0, 2 << 20) == 0, "fallocate");
    std::vector<uint8_t> b(4096);
    fill_random(b.data(), b.size(), 6);
    write_all(fd, b.data(), 4096, 512 << 10);
    check(::fallocate(fd, FALLOC_FL_KEEP_SIZE, 2 << 20, 1 << 20) == 0, "fallocate keep size");
    check(::fsync(fd) == 0, "fsync");
    ::close(fd);
  }
  {  // reflinked copies; one partially rewritten (copy on write)
    make_file(m + "/reflink_src", 1 << 20, 7, true);
    auto r = sh("cp --reflink=always " + quote(m + "/reflink_src") + " " + quote(m + "/reflink_copy") +
                " && cp --reflink=always " + quote(m + "/reflink_src") + " " + quote(m + "/reflink_copy2"));
    if (r.status != 0) throw std::runtime_error("cp --reflink=always: " + r.out);
    int fd = ::open((m + "/reflink_copy").c_str(), O_WRONLY);
    check(fd >= 0, "open reflink_copy");
    std::vector<uint8_t> b(8192);
    fill_random(b.data(), b.size(), 8);
    write_all(fd, b.data(), b.size(), 256 << 10);
    check(::fsync(fd) == 0, "fsync");
    ::close(fd);
  }
  // Directories in every format.
  check(::mkdir((m + "/dir_empty").c_str(), 0755) == 0, "mkdir");
  check(::mkdir((m + "/dir_sf").c_str(), 0755) == 0, "mkdir");
  for (int i = 0; i < 3; ++i) make_file(m + "/dir_sf/f" + std::to_string(i), 10 + i, 20 + i);
  check(::mkdir((m + "/dir_block").c_str(), 0755) == 0, "mkdir");
  for (int i = 0; i < 40; ++i) make_file(m + "/dir_block/entry_" + std::to_string(i), 0, 0);
  check(::mkdir((m + "/dir_leaf").c_str(), 0755) == 0, "mkdir");
  for (int i = 0; i < 300; ++i) {
    char name[64];
    snprintf(name, sizeof name, "leaf_entry_with_a_forty_char_name_%05d", i);
    make_file(m + "/dir_leaf/" + name, 0, 0);
  }
  check(::mkdir((m + "/dir_node").c_str(), 0755) == 0, "mkdir");
  for (int i = 0; i < kNodeDirEntries; ++i) {
    // Long names fill many directory blocks; allocating a block for every third file
    // in between scatters them, so the directory's data fork becomes a btree.
    std::string name = m + "/dir_node/" + std::to_string(100000 + i) + "_" + std::string(200, 'a' + i % 26);
    int fd = ::open(name.c_str(), O_CREAT | O_WRONLY, 0644);
    check(fd >= 0, "create node entry");
    if (i % 3 == 0) check(::fallocate(fd, 0, 0, 4096) == 0, "fallocate");
    ::close(fd);
  }
  // Nesting, special files, links.
  check(::mkdir((m + "/nest").c_str(), 0755) == 0 && ::mkdir((m + "/nest/a").c_str(), 0700) == 0 &&
            ::mkdir((m + "/nest/a/b").c_str(), 0755) == 0,
        "mkdir nest");
  make_file(m + "/nest/a/b/deep", 3000, 9);
  check(::mkfifo((m + "/nest/fifo").c_str(), 0600) == 0, "mkfifo");
  check(::mknod((m + "/nest/null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0, "mknod");
  check(::link((m + "/tiny").c_str(), (m + "/nest/hardlink").c_str()) == 0, "link");
  check(::symlink("large", (m + "/link_inline").c_str()) == 0, "symlink");
  std::string longtarget;
  while (longtarget.size() < 600) longtarget += "./";
  longtarget += "nest/a/b/deep";
  check(::symlink(longtarget.c_str(), (m + "/link_remote").c_str()) == 0, "symlink");
  check(::symlink("nest/a", (m + "/link_dir").c_str()) == 0, "symlink");
  check(::symlink("/tiny", (m + "/link_abs").c_str()) == 0, "symlink");
  check(::symlink("../../link_dir/b/deep", (m + "/nest/a/link_up").c_str()) == 0, "symlink");
  check(::symlink("loop_b", (m + "/loop_a").c_str()) == 0, "symlink");
  check(::symlink("loop_a", (m + "/loop_b").c_str()) == 0, "symlink");

  // Delalloc: fresh buffered data has no location until written back.
  {
    int fd = ::open((m + "/delalloc").c_str(), O_CREAT | O_WRONLY, 0644);
    check(fd >= 0, "open delalloc");
    std::vector<uint8_t> b(64 << 10);
    fill_random(b.data(), b.size(), 10);
    write_all(fd, b.data(), b.size(), 0);
    FiemapOptions nosync;
    nosync.sync = false;
    auto ex = fiemap(fd, nosync);
    for (auto& e : ex) fx.saw_delalloc |= e.has(kExtDelalloc);
    try {
      translate(ex, 0, b.size(), TranslateOptions{});
    } catch (const Error& e) {
      fx.delalloc_error = e.what();
    }
    auto synced = fiemap(fd, FiemapOptions{});
    fx.sync_cleared_delalloc = !synced.empty();
    for (auto& e : synced) fx.sync_cleared_delalloc &= !e.has(kExtDelalloc);
    ::close(fd);
  }
  ::sync();
}

void record(const std::string& m, Fixture& fx) {
  struct stat rs {};
  check(::lstat(m.c_str(), &rs) == 0, "stat root");
  fx.root_ino = rs.st_ino;
  fx.dev = backing_device(m + "/large");
  std::vector<std::string> regular;
  // lstat-based walk (never follows symlinks, so loop_a/loop_b are just entries).
  std::function<void(const std::string&)> walk = [&](const std::string& rel) {
    std::string dir = rel.empty() ? m : m + "/" + rel;
    HostEntry& d = fx.entries[rel];
    check(::lstat(dir.c_str(), &d.st) == 0, "lstat " + dir);
    d.ino = d.st.st_ino;
    d.type = X::FileType::directory;
    std::vector<std::string> names;
    for (auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    d.names = names;
    for (auto& n : names) {
      std::string r = rel.empty() ? n : rel + "/" + n;
      std::string full = m + "/" + r;
      HostEntry h;
      check(::lstat(full.c_str(), &h.st) == 0, "lstat " + full);
      h.ino = h.st.st_ino;
      h.type = type_of(h.st.st_mode);
      if (h.type == X::FileType::directory) {
        walk(r);
        continue;
      }
      if (h.type == X::FileType::regular) {
        h.fiemap = resolve(full).extents;
        h.hash = xxh64_file(full);
        regular.push_back(r);
      } else if (h.type == X::FileType::symlink) {
        h.target = fs::read_symlink(full).string();
      }
      fx.entries[r] = std::move(h);
    }
  };
  walk("");
  // xfs_bmap (XFS_IOC_GETBMAPX, an interface independent of FIEMAP) for every file.
  std::vector<std::string> full;
  for (auto& r : regular) full.push_back(m + "/" + r);
  auto bm = xfs_bmap_all(full);
  for (auto& r : regular) fx.entries[r].bmap = bm.at(m + "/" + r);
}

struct Phase {
  const char* name;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  ~Phase() {
    if (getenv("AISIO_TEST_TIMING"))
      fprintf(stderr, "  [fixture] %s: %.0f ms\n", name,
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
};

Fixture build() {
  Phase total{"total"};
  Fixture fx;
  if (!have_tool("mkfs.xfs")) {
    fx.skip = "mkfs.xfs not installed (apt-get install xfsprogs)";
    return fx;
  }
  // On tmpfs when there is one: the loop device's flushes then cost nothing.
  fx.tmp = std::make_unique<TempDir>(fs::is_directory("/dev/shm") ? "/dev/shm" : "");
  fx.image = *fx.tmp / "disk.img";
  std::string mnt = *fx.tmp / "mnt";
  fs::create_directory(mnt);
  {
    int fd = ::open(fx.image.c_str(), O_CREAT | O_RDWR, 0600);
    check(fd >= 0 && ::ftruncate(fd, off_t(kImageSize)) == 0, "create image");
    ::close(fd);
  }
  std::string why;
  auto loop = LoopDevice::attach(fx.image, kFsOffset, kImageSize - kFsOffset, &why);
  if (!loop) {
    fx.skip = "cannot set up a loop device (" + why + "); XfsProtofile tests cover the decoder without mounting";
    return fx;
  }
  std::optional<Phase> ph;
  ph.emplace("losetup");
  ph.emplace("mkfs");
  if (auto err = fil::mkfs_xfs(loop->dev()); !err.empty()) throw std::runtime_error("mkfs.xfs: " + err);
  ph.emplace("mount");
  if (!loop->mount(mnt, &why)) {
    fx.skip = "mounting the image was refused (" + why + "); XfsProtofile tests cover the decoder without mounting";
    return fx;
  }
  ph.emplace("populate");
  populate(mnt, fx);
  ph.emplace("remount");
  // Remount: inodes are evicted, so post-EOF speculative preallocations are trimmed and
  // the on-disk state is what FIEMAP reports.
  loop->umount();
  if (!loop->mount(mnt, &why)) throw std::runtime_error("remount: " + why);
  ph.emplace("record");
  record(mnt, fx);
  ph.emplace("umount");
  loop->umount();
  ph.emplace("blockdev");
  {
    X::Filesystem bd(std::make_shared<FileBlockReader>(loop->dev()));
    fx.root_via_blockdev = bd.list(bd.root());
  }
  ph.emplace("detach");
  return fx;
}

const Fixture& fixture() {
  static Fixture fx = build();
  return fx;
}

#define NEED_FIXTURE()                              \
  const Fixture& F = fixture();                     \
  if (!F.skip.empty()) GTEST_SKIP() << F.skip;      \
  auto reader = open_block_reader(F.image, kFsOffset); \
  X::Filesystem xfs(reader)

Extent strip_last(Extent e) {
  e.flags &= ~kExtLast;
  return e;
}

TEST(XfsImage, SuperblockAndDevice) {
  NEED_FIXTURE();
  const auto& sb = xfs.superblock();
  EXPECT_EQ(sb.block_size, 4096u);
  EXPECT_TRUE(sb.has_ftype());
  EXPECT_TRUE(sb.has_sparse_inodes());
  EXPECT_TRUE(sb.has_reflink());
  EXPECT_TRUE(sb.has_finobt());
  EXPECT_EQ(xfs.root(), F.root_ino);
  EXPECT_GT(sb.ag_count, 1u);
  // The mount's backing device is the loop device over our image at the offset.
  EXPECT_EQ(F.dev.loop_offset, kFsOffset);
  EXPECT_EQ(fs::canonical(F.dev.loop_backing_file), fs::canonical(F.image));
  EXPECT_FALSE(F.dev.partition);
  EXPECT_EQ(F.dev.logical_block_size, 512u);
  // Reading the block device itself (BLKGETSIZE64 path) gives the same root.
  EXPECT_EQ(F.root_via_blockdev, xfs.list(xfs.root()));
}

TEST(XfsImage, ListingMatchesMountedTree) {
  NEED_FIXTURE();
  std::map<std::string, X::DirEntry> seen;
  xfs.walk(xfs.root(), [&](const X::WalkEntry& w) { seen[w.path] = w.entry; });
  std::set<std::string> want, got;
  for (auto& [p, h] : F.entries)
    if (!p.empty()) want.insert(p);
  for (auto& [p, e] : seen) got.insert(p);
  EXPECT_EQ(want, got);
  for (auto& [p, h] : F.entries) {
    SCOPED_TRACE(p);
    uint64_t ino = p.empty() ? xfs.root() : seen.count(p) ? seen[p].ino : 0;
    if (!ino) continue;
    EXPECT_EQ(ino, h.ino);
    if (!p.empty()) {
      EXPECT_EQ(seen[p].type, h.type);
    }
    X::Inode in = xfs.inode(ino);
    EXPECT_EQ(in.mode, h.st.st_mode);
    EXPECT_EQ(in.nlink, h.st.st_nlink);
    EXPECT_EQ(in.uid, h.st.st_uid);
    EXPECT_EQ(in.size, uint64_t(h.st.st_size));
    EXPECT_EQ(in.mtime_ns, int64_t(h.st.st_mtim.tv_sec) * 1000000000 + h.st.st_mtim.tv_nsec);
    EXPECT_EQ(in.ctime_ns, int64_t(h.st.st_ctim.tv_sec) * 1000000000 + h.st.st_ctim.tv_nsec);
    if (h.type == X::FileType::chardev) {
      EXPECT_NE(in.rdev, 0u);
    }
    if (h.type == X::FileType::directory) {
      std::vector<std::string> names;
      for (auto& e : xfs.list(ino)) names.push_back(e.name);
      std::sort(names.begin(), names.end());
      EXPECT_EQ(names, h.names);
    }
    if (h.type == X::FileType::symlink) {
      EXPECT_EQ(xfs.readlink(ino), h.target);
    }
  }
}

TEST(XfsImage, DirectoryFormatsAndHashedLookup) {
  NEED_FIXTURE();
  struct Want {
    const char* dir;
    X::DirFormat format;
    int fork;
  };
  for (auto w : {Want{"", X::DirFormat::shortform, -1}, Want{"dir_empty", X::DirFormat::shortform, X::kFmtLocal},
                 Want{"dir_sf", X::DirFormat::shortform, X::kFmtLocal},
                 Want{"dir_block", X::DirFormat::block, X::kFmtExtents},
                 Want{"dir_leaf", X::DirFormat::leaf, X::kFmtExtents},
                 Want{"dir_node", X::DirFormat::node, X::kFmtBtree}}) {
    SCOPED_TRACE(w.dir);
    uint64_t ino = F.entries.at(w.dir).ino;
    X::DirInfo di = xfs.dir_info(ino);
    if (*w.dir) {  // the root's format depends on how many top-level entries there are
      EXPECT_EQ(X::dir_format_name(di.format), std::string(X::dir_format_name(w.format)));
      EXPECT_EQ(int(di.fork_format), w.fork);
    }
    // Every entry found through the hash index (or the inline list), plus . and ..
    for (auto& e : xfs.list(ino)) {
      auto r = xfs.lookup(ino, e.name);
      ASSERT_TRUE(r.has_value()) << e.name;
      EXPECT_EQ(*r, e.ino) << e.name;
    }
    EXPECT_EQ(xfs.lookup(ino, "."), ino);
    uint64_t parent = *w.dir ? F.entries.at(fs::path(w.dir).parent_path().string()).ino : xfs.root();
    EXPECT_EQ(xfs.lookup(ino, ".."), parent);
    EXPECT_EQ(xfs.parent(ino), parent);
    EXPECT_FALSE(xfs.lookup(ino, "no-such-entry").has_value());
    EXPECT_FALSE(xfs.lookup(ino, std::string(300, 'x')).has_value());
  }
  auto node = xfs.dir_info(F.entries.at("dir_node").ino);
  EXPECT_GT(node.data_blocks, 21u);
  EXPECT_GE(node.leaf_blocks, 3u);
  EXPECT_GE(node.free_blocks, 1u);
  EXPECT_EQ(xfs.list(F.entries.at("dir_node").ino).size(), size_t(kNodeDirEntries));
}

TEST(XfsImage, ExtentsMatchFiemapAndXfsBmap) {
  NEED_FIXTURE();
  int files = 0, bmapped = 0, btree = 0;
  bool saw_shared = false, saw_unwritten = false, saw_unshared_in_reflink = false;
  for (auto& [p, h] : F.entries) {
    if (h.type != X::FileType::regular) continue;
    SCOPED_TRACE(p);
    auto ext = xfs.extents(h.ino);
    EXPECT_EQ(ext, h.fiemap) << "decoder:\n" << dump(ext) << "FIEMAP:\n" << dump(h.fiemap);
    std::vector<Extent> d;
    for (auto& e : ext) d.push_back(strip_last(e));
    EXPECT_EQ(d, h.bmap) << "decoder:\n" << dump(d) << "xfs_bmap:\n" << dump(h.bmap);
    bmapped += !h.bmap.empty();
    for (auto& e : ext) {
      saw_shared |= e.has(kExtShared);
      saw_unwritten |= e.has(kExtUnwritten);
      if (p == "reflink_copy") saw_unshared_in_reflink |= !e.has(kExtShared);
    }
    btree += xfs.inode(h.ino).format == X::kFmtBtree;
    ++files;
  }
  EXPECT_GT(files, kNodeDirEntries);
  EXPECT_GE(bmapped, kNodeDirEntries / 3);  // every file was compared; this many had extents
  EXPECT_GE(btree, 5);  // bmbt, frag0..3
  EXPECT_TRUE(saw_shared);
  EXPECT_TRUE(saw_unwritten);
  EXPECT_TRUE(saw_unshared_in_reflink);
  // Specific layouts.
  // Every other block written: 600 written extents (the gaps between them may be
  // unwritten post-EOF preallocation that writeback converted).
  auto bm = xfs.extents(F.entries.at("bmbt").ino);
  EXPECT_EQ(std::count_if(bm.begin(), bm.end(), [](const Extent& e) { return !e.has(kExtUnwritten); }), 600);
  EXPECT_GT(bm.size(), 251u);  // more than one bmbt leaf block holds
  EXPECT_GE(xfs.extents(F.entries.at("frag0").ino).size(), 22u);
  auto pre = xfs.extents(F.entries.at("prealloc").ino);
  ASSERT_FALSE(pre.empty());
  EXPECT_EQ(pre.back().end(), 3u << 20);  // KEEP_SIZE preallocation past EOF
  EXPECT_TRUE(pre.back().has(kExtUnwritten | kExtLast));
  EXPECT_TRUE(xfs.extents(F.entries.at("empty").ino).empty());
}

TEST(XfsImage, TranslatorReproducesFileBytes) {
  NEED_FIXTURE();
  FileBlockReader image(F.image);
  int files = 0;
  for (auto& [p, h] : F.entries) {
    if (h.type != X::FileType::regular) continue;
    SCOPED_TRACE(p);
    uint64_t size = uint64_t(h.st.st_size);
    auto ext = xfs.extents(h.ino);
    std::vector<uint8_t> buf(size);
    // Decoder extents, whole-image LBAs (the file system starts at kFsOffset).
    for (uint32_t lba : {512u, 4096u}) {
      TranslateOptions t;
      t.lba_size = lba;
      t.device_offset = kFsOffset;
      t.file_size = size;
      if (p == "large") t.max_nlb = 8;  // exercise run splitting
      read_file_range(image, ext, 0, size, t, buf.data());
      EXPECT_EQ(xxh64_bytes(buf.data(), buf.size()), h.hash) << "LBA size " << lba;
    }
    // FIEMAP extents taken while mounted, with the loop device's offset applied.
    TranslateOptions t;
    t.device_offset = F.dev.loop_offset;
    t.file_size = size;
    std::fill(buf.begin(), buf.end(), 0xee);
    read_file_range(image, h.fiemap, 0, size, t, buf.data());
    EXPECT_EQ(xxh64_bytes(buf.data(), buf.size()), h.hash);
    // And through the decoder's own reader.
    if (size <= (8u << 20)) {
      auto b = xfs.read_file(h.ino);
      EXPECT_EQ(xxh64_bytes(b.data(), b.size()), h.hash);
    }
    ++files;
  }
  EXPECT_GT(files, kNodeDirEntries);

  // Holes and unwritten ranges become zero-fill runs; nothing reads them.
  auto runs = translate(xfs.extents(F.entries.at("sparse").ino), 0, 6 << 20, TranslateOptions{.lba_size = 4096});
  uint64_t zero = 0, data = 0;
  for (auto& r : runs) (r.zero_fill ? zero : data) += r.length;
  EXPECT_EQ(zero + data, 6u << 20);
  EXPECT_EQ(data, 8192u + 4096u + 8192u);  // 3 MiB+100 (+5000) touches blocks 768..769
  auto pre = translate(xfs.extents(F.entries.at("prealloc").ino), 0, 2 << 20, TranslateOptions{});
  uint64_t pre_data = 0;
  for (auto& r : pre) pre_data += r.zero_fill ? 0 : r.length;
  EXPECT_EQ(pre_data, 4096u);
  // Unaligned range inside a 512-byte LBA device.
  auto lg = xfs.extents(F.entries.at("large").ino);
  auto part = translate(lg, 1000, 1000 + 70000, TranslateOptions{.lba_size = 512, .device_offset = kFsOffset});
  ASSERT_FALSE(part.empty());
  EXPECT_EQ(part.front().skip, 1000u % 512u);
  std::vector<uint8_t> piece(70000);
  read_file_range(image, lg, 1000, 71000, TranslateOptions{.lba_size = 512, .device_offset = kFsOffset}, piece.data());
  auto whole = xfs.read_file(F.entries.at("large").ino, 1000, 70000);
  EXPECT_EQ(piece, whole);
}

TEST(XfsImage, PathWalkAndSymlinks) {
  NEED_FIXTURE();
  auto ino = [&](const char* p) { return F.entries.at(p).ino; };
  EXPECT_EQ(xfs.resolve("/"), xfs.root());
  EXPECT_EQ(xfs.resolve("/nest/a/b/deep"), ino("nest/a/b/deep"));
  EXPECT_EQ(xfs.resolve("nest//a/./b/../b/deep"), ino("nest/a/b/deep"));
  EXPECT_EQ(xfs.resolve("/link_inline"), ino("large"));
  EXPECT_EQ(xfs.resolve("/link_inline", {.follow_final = false}), ino("link_inline"));
  EXPECT_EQ(xfs.resolve("/link_remote"), ino("nest/a/b/deep"));  // 600+ byte target in a remote block
  EXPECT_EQ(xfs.inode(ino("link_remote")).format, X::kFmtExtents);
  EXPECT_EQ(xfs.inode(ino("link_inline")).format, X::kFmtLocal);
  EXPECT_EQ(xfs.resolve("/link_dir/b/deep"), ino("nest/a/b/deep"));
  EXPECT_EQ(xfs.resolve("/link_abs"), ino("tiny"));  // absolute: from this file system's root
  EXPECT_EQ(xfs.resolve("/nest/a/link_up"), ino("nest/a/b/deep"));
  EXPECT_EQ(xfs.resolve("/nest/hardlink"), ino("tiny"));
  EXPECT_EQ(xfs.resolve("/dir_node/" + std::to_string(100000 + 1234) + "_" + std::string(200, 'a' + 1234 % 26)),
            ino(("dir_node/" + std::to_string(100000 + 1234) + "_" + std::string(200, 'a' + 1234 % 26)).c_str()));
  auto expect_error = [&](const std::string& p, const char* needle, X::ResolveOptions o = {}) {
    try {
      xfs.resolve(p, o);
      ADD_FAILURE() << p << " resolved";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error("/loop_a", "too many levels of symbolic links");
  expect_error("/loop_a/x", "too many levels of symbolic links", {.follow_final = false});
  expect_error("/link_inline", "too many levels", {.max_symlinks = 0});
  expect_error("/nope", "No such file or directory");
  expect_error("/tiny/x", "Not a directory");
  EXPECT_EQ(xfs.resolve("/loop_a", {.follow_final = false}), ino("loop_a"));
  // Recursive walk order: a directory's entries follow it.
  std::vector<std::string> order;
  xfs.walk(ino("nest"), [&](const X::WalkEntry& w) { order.push_back(w.path); });
  auto pos = [&](const std::string& s) { return std::find(order.begin(), order.end(), s) - order.begin(); };
  EXPECT_LT(pos("a"), pos("a/b"));
  EXPECT_LT(pos("a/b"), pos("a/b/deep"));
  EXPECT_EQ(order.size(), 7u);  // a, a/b, a/b/deep, a/link_up, fifo, null, hardlink
}

TEST(XfsImage, DelallocNeedsSync) {
  const Fixture& F = fixture();
  if (!F.skip.empty()) GTEST_SKIP() << F.skip;
  EXPECT_TRUE(F.saw_delalloc) << "FIEMAP without sync showed no delalloc extent";
  EXPECT_NE(F.delalloc_error.find("FIEMAP_FLAG_SYNC"), std::string::npos) << F.delalloc_error;
  EXPECT_TRUE(F.sync_cleared_delalloc);
}

}  // namespace
