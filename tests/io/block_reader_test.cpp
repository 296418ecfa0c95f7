// The BlockReader over our driver: byte-exact reads at any offset and length, and the
// XFS decoder reading an unmounted image through it (image served by an in-process
// software controller with file backing).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <random>

#include "common/error.hpp"
#include "common/expect_error.hpp"
#include "extents/xfs.hpp"
#include "fil/image.hpp"
#include "target/target.hpp"
#include "io/extent_source.hpp"
#include "io/nvme_block_reader.hpp"

using aisio::test::expect_error;

using namespace aisio;
namespace fs = std::filesystem;

namespace {
std::string temp_dir() {
  std::string t = (fs::temp_directory_path() / "aisio-io-br-XXXXXX").string();
  std::vector<char> b(t.begin(), t.end());
  b.push_back(0);
  if (!mkdtemp(b.data())) throw std::runtime_error("mkdtemp");
  return b.data();
}
}  // namespace

TEST(IoNvmeBlockReader, MatchesTheImageFileAtAnyOffset) {
  for (uint32_t lba : {512u, 4096u}) {
    std::string dir = temp_dir();
    std::string img = dir + "/ns.img";
    const size_t size = 8 << 20;
    std::vector<uint8_t> bytes(size);
    std::mt19937_64 g(lba);
    for (auto& b : bytes) b = uint8_t(g());
    {
      int fd = ::open(img.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(::write(fd, bytes.data(), size), ssize_t(size));
      ::close(fd);
    }
    auto ic = target::open("image:" + img, {.image_lba_size = lba});
    for (uint64_t window : {uint64_t(0), uint64_t(1 << 20)}) {
      // A small bounce buffer: reads span several commands.
      io::NvmeBlockReader r(backends::target_of(ic->controller()), window, 64 << 10);
      EXPECT_EQ(r.size(), size - window);
      EXPECT_EQ(r.lba_size(), lba);
      std::vector<uint8_t> out;
      for (int i = 0; i < 200; ++i) {
        uint64_t len = i % 7 == 0 ? g() % (300 << 10) : g() % 9000;
        uint64_t off = g() % (r.size() - len);
        if (i == 0) off = 0, len = 1;
        if (i == 1) off = r.size() - 1, len = 1;
        out.assign(size_t(len), 0xEE);
        r.read(off, out.data(), size_t(len));
        ASSERT_EQ(std::memcmp(out.data(), bytes.data() + window + off, size_t(len)), 0)
            << "lba " << lba << " window " << window << " off " << off << " len " << len;
      }
      uint8_t b;
      expect_error([&] { r.read(r.size(), &b, 1); }, Errc::io,
                   "read of 1 bytes at offset " + std::to_string(r.size()) + " is past the end of namespace");
      EXPECT_GT(r.commands(), 200u);
    }
    ic.reset();
    fs::remove_all(dir);
  }
}

TEST(IoNvmeBlockReader, XfsDecoderReadsAnUnmountedImageThroughTheDriver) {
  if (!fil::have_tool("mkfs.xfs")) GTEST_SKIP() << "mkfs.xfs not installed (apt-get install xfsprogs)";
  std::string dir = temp_dir();
  // A small tree, copied in by mkfs.xfs -p (no root, no mount needed).
  std::string src = dir + "/src";
  fs::create_directories(src + "/sub");
  std::vector<std::pair<std::string, size_t>> files = {{"a.bin", 1}, {"sub/b.bin", 70000}, {"sub/c.bin", 1 << 20}};
  std::mt19937_64 g(5);
  std::map<std::string, std::vector<uint8_t>> want;
  for (auto& [rel, n] : files) {
    auto& v = want[rel];
    v.resize(n);
    for (auto& b : v) b = uint8_t(g());
    int fd = ::open((src + "/" + rel).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, v.data(), n), ssize_t(n));
    ::close(fd);
  }
  std::string img = dir + "/fs.img", proto = dir + "/proto";
  {
    int fd = ::open(img.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_EQ(::ftruncate(fd, 64 << 20), 0);
    ::close(fd);
  }
  fil::write_protofile(proto, src, "data");
  auto err = fil::mkfs_xfs(img, "-p " + fil::shell_quote(proto));
  ASSERT_EQ(err, "");
  auto ic = target::open("image:" + img);
  auto reader = std::make_shared<io::NvmeBlockReader>(backends::target_of(ic->controller()));
  io::XfsSource xs(reader, "/data", 0);
  for (auto& [rel, v] : want) {
    auto got = xs.read_file(rel);
    ASSERT_TRUE(got == v) << rel;
    auto rf = xs.resolve(rel);
    EXPECT_EQ(rf.size, v.size());
    EXPECT_FALSE(rf.extents.empty());
  }
  EXPECT_FALSE(xs.exists("nope"));
  expect_error([&] { xs.resolve("nope"); }, Errc::invalid_argument, "XFS: /data/nope: No such file or directory");
  reader.reset();
  ic.reset();
  fs::remove_all(dir);
}
