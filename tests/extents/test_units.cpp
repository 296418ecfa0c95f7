// Unit tests of the extents layer that need no XFS image: CRC32c, extent helpers,
// the LBA translator, sysfs device lookup,
// FIEMAP and the extent cache on whatever file system holds $TMPDIR.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "common/error.hpp"
#include "extents/block_reader.hpp"
#include "extents/cache.hpp"
#include "extents/crc32c.hpp"
#include "extents/device.hpp"
#include "extents/extent.hpp"
#include "extents/fiemap.hpp"
#include "extents/helpers.hpp"
#include "extents/translate.hpp"
#include "extents/xfs_format.hpp"

namespace {
using namespace aisio;
using namespace aisio::extents;
using namespace aisio::test;
namespace fs = std::filesystem;

// ---- CRC32c ----------------------------------------------------------------------

TEST(Crc32c, KnownVectorsAndXfsLayout) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c("", 0), 0u);
  std::vector<uint8_t> b(4096);
  fill_random(b.data(), b.size(), 1);
  // Incremental == one shot, at every split point class.
  for (size_t cut : {0u, 1u, 7u, 8u, 9u, 2047u, 4096u}) {
    uint32_t c = crc32c_update(~0u, b.data(), cut);
    c = crc32c_update(c, b.data() + cut, b.size() - cut);
    EXPECT_EQ(~c, crc32c(b.data(), b.size())) << cut;
  }
  xfs_update_cksum(b.data(), b.size(), 100);
  EXPECT_TRUE(xfs_verify_cksum(b.data(), b.size(), 100));
  b[5] ^= 1;
  EXPECT_FALSE(xfs_verify_cksum(b.data(), b.size(), 100));
  EXPECT_FALSE(xfs_verify_cksum(b.data(), 50, 100));  // field outside the buffer
}

TEST(XfsFormat, HashAndBigEndian) {
  uint8_t p[8];
  xfs::put_be64(p, 0x0102030405060708ull);
  EXPECT_EQ(p[0], 1);
  EXPECT_EQ(xfs::be64(p), 0x0102030405060708ull);
  EXPECT_EQ(xfs::be32(p + 4), 0x05060708u);
  EXPECT_EQ(xfs::be16(p + 6), 0x0708u);
  // xfs_da_hashname: "." and ".." are the classic fixed values.
  EXPECT_EQ(xfs::da_hashname(reinterpret_cast<const uint8_t*>("."), 1), 0x2eu);
  EXPECT_EQ(xfs::da_hashname(reinterpret_cast<const uint8_t*>(".."), 2), (0x2eu << 7) ^ 0x2eu);
  xfs::View v(p, 8, "thing");
  EXPECT_EQ(v.u32(4), 0x05060708u);
  expect_error([&] { v.u32(5); }, Errc::protocol, "thing: field at byte 5");
}

// ---- extent helpers --------------------------------------------------------------

TEST(Extent, FlagsHolesMerge) {
  EXPECT_EQ(flag_names(kExtUnwritten | kExtShared | kExtLast), "unwritten,shared,last");
  EXPECT_EQ(flag_names(0), "");
  std::vector<Extent> e{{4096, 100 * 4096, 4096, 0}, {8192, 101 * 4096, 4096, 0}, {16384, 500 * 4096, 4096, kExtLast}};
  auto h = fill_holes(e, 32768);
  ASSERT_EQ(h.size(), 6u);
  EXPECT_EQ(h[0], (Extent{0, 0, 4096, kExtHole}));
  EXPECT_EQ(h[3], (Extent{12288, 0, 4096, kExtHole}));
  EXPECT_EQ(h[5], (Extent{20480, 0, 12288, kExtHole | kExtLast}));
  EXPECT_FALSE(h[4].has(kExtLast));
  auto m = merge_adjacent(e);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0], (Extent{4096, 100 * 4096, 8192, 0}));
  EXPECT_TRUE(fill_holes({}, 0).empty());
  EXPECT_EQ(fill_holes({}, 10).size(), 1u);
  std::vector<Extent> bad{{0, 0, 4096, 0}, {2048, 0, 4096, 0}};
  expect_error([&] { check_sorted(bad, "x"); }, Errc::protocol, "overlaps");
  std::vector<Extent> zero{{0, 0, 0, 0}};
  expect_error([&] { check_sorted(zero, "x"); }, Errc::protocol, "zero length");
}

// ---- translator ------------------------------------------------------------------

TEST(Translate, RunsForAlignedAndUnalignedRanges) {
  std::vector<Extent> e{{0, 1 << 20, 8192, 0},                        // data
                        {8192, 2 << 20, 4096, kExtUnwritten},        // zeros
                        {16384, 3 << 20, 8192, kExtShared | kExtLast}};  // gap 12288..16384 is a hole
  TranslateOptions o{.lba_size = 512, .device_offset = 1 << 30};
  auto r = translate(e, 0, 24576, o);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0], (LbaRun{0, 8192, false, ((1u << 20) + (1u << 30)) / 512, 16, 0}));
  EXPECT_EQ(r[1], (LbaRun{8192, 8192, true, 0, 0, 0}));  // unwritten + hole merged
  EXPECT_EQ(r[2], (LbaRun{16384, 8192, false, ((3u << 20) + (1u << 30)) / 512, 16, 0}));
  // Unaligned start and end inside one extent.
  auto u = translate(e, 100, 1000, TranslateOptions{.lba_size = 4096});
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0], (LbaRun{100, 900, false, (1u << 20) / 4096, 1, 100}));
  auto u2 = translate(e, 4000, 4200, TranslateOptions{.lba_size = 4096});
  EXPECT_EQ(u2[0].nlb, 2u);  // crosses an LBA boundary
  EXPECT_EQ(u2[0].skip, 4000u);
  // Past the last extent: zeros; clipped at file_size.
  auto t = translate(e, 20000, 40000, TranslateOptions{.file_size = 30000});
  ASSERT_EQ(t.size(), 2u);
  EXPECT_TRUE(t[1].zero_fill);
  EXPECT_EQ(t[1].file_offset + t[1].length, 30000u);
  EXPECT_TRUE(translate(e, 5, 5, TranslateOptions{}).empty());
  EXPECT_TRUE(translate(e, 100, 200, TranslateOptions{.file_size = 50}).empty());
  EXPECT_TRUE(translate({}, 0, 100, TranslateOptions{})[0].zero_fill);
}

TEST(Translate, SplitsAtMaxNlb) {
  std::vector<Extent> e{{0, 4096 * 1000, 4096 * 300, 0}};
  auto r = translate(e, 1000, 4096 * 300, TranslateOptions{.lba_size = 4096, .max_nlb = 64});
  uint64_t pos = 1000;
  for (auto& x : r) {
    EXPECT_LE(x.nlb, 64u);
    EXPECT_EQ(x.file_offset, pos);
    EXPECT_EQ(x.slba * 4096 + x.skip, 4096 * 1000 + x.file_offset);
    pos += x.length;
  }
  EXPECT_EQ(pos, 4096u * 300);
  EXPECT_EQ(r.size(), 5u);  // 300 LBAs / 64
}

TEST(Translate, RefusesWhatHasNoLba) {
  auto one = [](uint32_t f) { return std::vector<Extent>{{0, 0, 4096, f}}; };
  expect_error([&] { translate(one(kExtDelalloc | kExtUnknown), 0, 10, {}); }, Errc::not_supported,
               "FIEMAP_FLAG_SYNC");
  expect_error([&] { translate(one(kExtInline), 0, 10, {}); }, Errc::not_supported, "inline");
  expect_error([&] { translate(one(kExtEncoded), 0, 10, {}); }, Errc::not_supported, "encoded");
  expect_error([&] { translate(one(kExtUnknown), 0, 10, {}); }, Errc::not_supported, "no known device location");
  expect_error([&] { translate(one(0), 0, 10, TranslateOptions{.lba_size = 1000}); }, Errc::invalid_argument,
               "power of two");
  expect_error([&] { translate(one(0), 10, 5, {}); }, Errc::invalid_argument, "before start");
  std::vector<Extent> unsorted{{4096, 0, 4096, 0}, {0, 0, 4096, 0}};
  expect_error([&] { translate(unsorted, 0, 10, {}); }, Errc::protocol, "out of order");
  // A delalloc extent outside the range does not matter.
  std::vector<Extent> mixed{{0, 8192, 4096, 0}, {4096, 0, 4096, kExtDelalloc}};
  EXPECT_NO_THROW(translate(mixed, 0, 4096, {}));
}

// Random extent maps and ranges: reading through the runs equals a byte-by-byte
// reference walk of the map.
TEST(Translate, RandomMapsReadBackExactly) {
  std::mt19937_64 rng(7);
  std::vector<uint8_t> dev(1 << 20);
  fill_random(dev.data(), dev.size(), 99);
  MemoryBlockReader mr(dev);
  for (int it = 0; it < 300; ++it) {
    uint32_t lba = 512u << (rng() % 4);
    uint64_t unit = 512u << (rng() % 3);
    std::vector<Extent> ext;
    uint64_t pos = 0;
    int n = 1 + int(rng() % 6);
    for (int i = 0; i < n; ++i) {
      pos += (rng() % 3) * unit;  // maybe a hole
      uint64_t len = (1 + rng() % 8) * unit;
      uint64_t phys = (rng() % ((dev.size() - 16 * 4096 - 65536) / unit)) * unit;
      uint32_t f = rng() % 4 == 0 ? uint32_t(kExtUnwritten) : rng() % 5 == 0 ? uint32_t(kExtShared) : 0u;
      ext.push_back({pos, phys, len, f});
      pos += len;
    }
    uint64_t devoff = (rng() % 8) * 4096;
    uint64_t size = pos + rng() % 3000;
    uint64_t a = rng() % (size + 1), b = a + rng() % (size - a + 2000);
    TranslateOptions o{.lba_size = lba, .device_offset = devoff, .max_nlb = uint32_t(1 + rng() % 16), .file_size = size};
    std::vector<uint8_t> got(b - a, 0xcc), want(b - a, 0);
    read_file_range(mr, ext, a, b, o, got.data());
    for (uint64_t x = a; x < std::min(b, size); ++x)
      for (auto& e : ext)
        if (x >= e.logical && x < e.end() && !e.reads_as_zeros()) want[x - a] = dev[e.physical + devoff + x - e.logical];
    ASSERT_EQ(got, want) << "iteration " << it;
  }
}

// ---- sysfs device lookup ---------------------------------------------------------

void put(const std::string& p, const std::string& v) {
  fs::create_directories(fs::path(p).parent_path());
  write_bytes(p, std::vector<uint8_t>(v.begin(), v.end()));
}

TEST(Device, PartitionStartFromFakeSysfs) {
  TempDir t;
  std::string sys = t.path();
  std::string disk = sys + "/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1";
  put(disk + "/queue/logical_block_size", "4096\n");
  put(disk + "/queue/physical_block_size", "4096\n");
  put(disk + "/uevent", "MAJOR=259\nMINOR=0\nDEVNAME=nvme0n1\nDEVTYPE=disk\n");
  put(disk + "/nvme0n1p2/partition", "2\n");
  put(disk + "/nvme0n1p2/start", "2099200\n");
  put(disk + "/nvme0n1p2/size", "1000000\n");
  put(disk + "/nvme0n1p2/uevent", "MAJOR=259\nMINOR=2\nDEVNAME=nvme0n1p2\nDEVTYPE=partition\n");
  fs::create_directories(sys + "/dev/block");
  fs::create_symlink("../../devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1/nvme0n1p2", sys + "/dev/block/259:2");
  fs::create_symlink("../../devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1", sys + "/dev/block/259:0");
  auto p = block_device(259, 2, sys);
  EXPECT_TRUE(p.partition);
  EXPECT_EQ(p.name, "nvme0n1p2");
  EXPECT_EQ(p.disk, "nvme0n1");
  EXPECT_EQ(p.devnode, "/dev/nvme0n1p2");
  EXPECT_EQ(p.disk_devnode, "/dev/nvme0n1");
  EXPECT_EQ(p.partition_start, 2099200ull * 512);
  EXPECT_EQ(p.disk_offset(), 2099200ull * 512);
  EXPECT_EQ(p.size, 1000000ull * 512);
  EXPECT_EQ(p.logical_block_size, 4096u);
  EXPECT_TRUE(p.slaves.empty());
  auto d = block_device(259, 0, sys);
  EXPECT_FALSE(d.partition);
  EXPECT_EQ(d.disk_offset(), 0u);
  expect_error([&] { block_device(8, 1, sys); }, Errc::not_supported, "not found");
  // A device-mapper device says what it is stacked on.
  std::string dm = sys + "/devices/virtual/block/dm-0";
  put(dm + "/uevent", "MAJOR=253\nMINOR=0\nDEVNAME=dm-0\n");
  put(dm + "/slaves/nvme0n1p2/dev", "259:2\n");
  fs::create_symlink("../../devices/virtual/block/dm-0", sys + "/dev/block/253:0");
  EXPECT_EQ(block_device(253, 0, sys).slaves, std::vector<std::string>{"nvme0n1p2"});
  // The partition offset carries into the LBAs.
  std::vector<Extent> e{{0, 8192, 4096, 0}};
  auto r = translate(e, 0, 4096, TranslateOptions{.lba_size = p.logical_block_size, .device_offset = p.disk_offset()});
  EXPECT_EQ(r[0].slba, (2099200ull * 512 + 8192) / 4096);
}

TEST(Device, RealBackingDevices) {
  // tmpfs has no block device behind it.
  if (fs::is_directory("/dev/shm")) {
    TempDir t("/dev/shm");
    write_bytes(t / "f", {1, 2, 3});
    expect_error([&] { backing_device(t / "f"); }, Errc::not_supported, "not on a block device");
  }
  TempDir t;
  write_bytes(t / "f", {1, 2, 3});
  try {
    auto d = backing_device(t / "f");
    EXPECT_FALSE(d.name.empty());
    EXPECT_GE(d.logical_block_size, 512u);
    struct stat st {};
    ASSERT_EQ(::stat((t / "f").c_str(), &st), 0);
    EXPECT_EQ(d.major, major(st.st_dev));
    EXPECT_EQ(d.minor, minor(st.st_dev));
  } catch (const Error& e) {
    // not_supported: no block device behind $TMPDIR (tmpfs, overlay); anything else fails.
    if (e.code() != Errc::not_supported) FAIL() << e.what();
    GTEST_SKIP() << "$TMPDIR is not on a block device: " << e.what();
  }
}

// ---- FIEMAP and the cache (on $TMPDIR's file system) -------------------------------

// Returns "" when FIEMAP works on `dir`, else why not.
std::string fiemap_unsupported(const std::string& dir) {
  write_bytes(dir + "/probe", std::vector<uint8_t>(4096, 1));
  try {
    resolve(dir + "/probe");
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

void write_at(const std::string& p, uint64_t off, size_t n, uint64_t seed, bool sync = true) {
  int fd = ::open(p.c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  std::vector<uint8_t> b(n);
  fill_random(b.data(), n, seed);
  ASSERT_EQ(::pwrite(fd, b.data(), n, off_t(off)), ssize_t(n));
  if (sync) {
    ASSERT_EQ(::fsync(fd), 0);
  }
  ::close(fd);
}

TEST(Fiemap, ExtentsHolesBatchesAndErrors) {
  TempDir t;
  if (auto why = fiemap_unsupported(t.path()); !why.empty()) GTEST_SKIP() << why;
  std::string f = t / "sparse";
  for (int i = 0; i < 40; ++i) write_at(f, uint64_t(i) * 2 * 65536, 4096, i, false);
  auto fx = resolve(f);
  EXPECT_EQ(fx.size, 39u * 2 * 65536 + 4096);
  ASSERT_GE(fx.extents.size(), 40u);  // holes between every write
  EXPECT_TRUE(fx.extents.back().has(kExtLast));
  for (auto& e : fx.extents) EXPECT_FALSE(e.has(kExtDelalloc));  // synced
  check_sorted(fx.extents, "fiemap");
  // One extent per ioctl gives the same list (the batch loop).
  auto one = resolve(f, FiemapOptions{.batch = 1});
  EXPECT_EQ(one.extents, fx.extents);
  auto three = resolve(f, FiemapOptions{.batch = 3});
  EXPECT_EQ(three.extents, fx.extents);
  // A sub-range.
  auto part = resolve(f, FiemapOptions{.start = 4 * 65536, .length = 4 * 65536});
  ASSERT_FALSE(part.extents.empty());
  EXPECT_LE(part.extents.front().logical, 4u * 65536);
  EXPECT_LT(part.extents.back().logical, 8u * 65536);
  expect_error([&] { resolve(t.path()); }, Errc::invalid_argument, "not a regular file");
  expect_error([&] { resolve(t / "missing"); }, Errc::system, "No such file");
  if (fs::is_directory("/dev/shm")) {
    TempDir s("/dev/shm");
    write_bytes(s / "f", {1, 2, 3});
    try {
      resolve(s / "f");  // tmpfs may or may not implement FIEMAP
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::not_supported) << e.what();
    }
  }
}

TEST(Fiemap, DelallocWithoutSync) {
  TempDir t;
  if (auto why = fiemap_unsupported(t.path()); !why.empty()) GTEST_SKIP() << why;
  std::string f = t / "dirty";
  write_at(f, 0, 65536, 1, false);
  int fd = ::open(f.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  auto raw = fiemap(fd, FiemapOptions{.sync = false});
  bool delalloc = false;
  for (auto& e : raw) delalloc |= e.has(kExtDelalloc);
  auto synced = fiemap(fd, FiemapOptions{});
  ::close(fd);
  for (auto& e : synced) EXPECT_FALSE(e.has(kExtDelalloc));
  if (!delalloc) GTEST_SKIP() << "this file system allocated at write time (no delalloc)";
  expect_error([&] { translate(raw, 0, 65536, {}); }, Errc::not_supported, "delayed allocation");
}

TEST(ExtentCache, HitsAndInvalidation) {
  TempDir t;
  if (auto why = fiemap_unsupported(t.path()); !why.empty()) GTEST_SKIP() << why;
  std::string f = t / "file";
  write_at(f, 0, 8192, 1);
  ExtentCache c(CacheOptions{.racy_window_ns = 0});
  auto a = c.get(f);
  auto b = c.get(f);
  EXPECT_EQ(a, b);  // same entry
  EXPECT_EQ(c.stats().hits, 1u);
  EXPECT_EQ(c.stats().misses, 1u);
  // Append: size, mtime and ctime move.
  write_at(f, 1 << 20, 4096, 2);
  auto d = c.get(f);
  EXPECT_NE(d, a);
  EXPECT_EQ(d->size, (1u << 20) + 4096);
  EXPECT_EQ(c.stats().invalidations, 1u);
  // Rewrite in place and put mtime back: ctime still moves.
  struct stat st {};
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  write_at(f, 0, 4096, 3);
  timespec ts[2] = {st.st_atim, st.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, f.c_str(), ts, 0), 0);
  auto e = c.get(f);
  EXPECT_NE(e, d);
  EXPECT_EQ(c.stats().invalidations, 2u);
  // Explicit refresh and invalidate.
  auto g = c.refresh(f);
  EXPECT_NE(g, e);
  EXPECT_EQ(c.stats().invalidations, 3u);
  c.invalidate(g->dev, g->ino);
  EXPECT_EQ(c.size(), 0u);
  c.get(f);
  EXPECT_EQ(c.stats().misses, 2u);
  // LRU capacity.
  ExtentCache small(CacheOptions{.capacity = 2, .racy_window_ns = 0});
  for (int i = 0; i < 3; ++i) {
    write_at(t / ("f" + std::to_string(i)), 0, 4096, i);
    small.get(t / ("f" + std::to_string(i)));
  }
  EXPECT_EQ(small.size(), 2u);
}

TEST(ExtentCache, RacyEntriesAreRechecked) {
  TempDir t;
  if (auto why = fiemap_unsupported(t.path()); !why.empty()) GTEST_SKIP() << why;
  std::string f = t / "file";
  write_at(f, 0, 4096, 1);
  ExtentCache c(CacheOptions{.racy_window_ns = 60'000'000'000});  // everything is "recent"
  auto a = c.get(f);
  auto b = c.get(f);
  EXPECT_NE(a, b);  // re-resolved: a same-tick write could hide behind equal stamps
  EXPECT_EQ(c.stats().hits, 0u);
  EXPECT_EQ(c.stats().invalidations, 1u);
}

}  // namespace
