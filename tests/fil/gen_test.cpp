// The generator: same seed, same data set; every file matches its manifest entry; the
// awkward files have the layout they claim (holes, unwritten ranges, fragmentation).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "common/error.hpp"
#include "extents/fiemap.hpp"
#include "fil/content.hpp"
#include "fil/gen.hpp"
#include "fil/helpers.hpp"
#include "fil/manifest.hpp"

using namespace aisio;
using namespace aisio::fil;
using filtest::TempDir;

namespace {

std::vector<uint8_t> read_all(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  auto s = ss.str();
  return {s.begin(), s.end()};
}

GenOptions small(uint64_t seed) {
  GenOptions o;
  o.count = 60;
  o.size = SizeDist::parse("uniform:1:200K");
  o.mix = true;
  o.seed = seed;
  o.fanout = 8;
  return o;
}

}  // namespace

TEST(FilSizeDist, Parse) {
  EXPECT_EQ(SizeDist::parse("fixed:4K").a, 4096u);
  auto u = SizeDist::parse("uniform:1:2M");
  EXPECT_EQ(u.kind, SizeDist::uniform);
  EXPECT_EQ(u.b, 2u << 20);
  auto l = SizeDist::parse("lognormal:256K:1.5:8M");
  EXPECT_EQ(l.kind, SizeDist::lognormal);
  EXPECT_DOUBLE_EQ(l.sigma, 1.5);
  for (const char* bad : {"", "fixed", "fixed:x", "uniform:5:1", "lognormal:1K", "normal:1:2", "lognormal:0:1",
                          "fixed:4Q"})
    EXPECT_THROW(SizeDist::parse(bad), Error) << bad;
  Rng r(1);
  for (int i = 0; i < 1000; ++i) {
    uint64_t v = l.sample(r);
    EXPECT_GE(v, 1u);
    EXPECT_LE(v, 8u << 20);
    uint64_t w = u.sample(r);
    EXPECT_GE(w, 1u);
    EXPECT_LE(w, 2u << 20);
  }
}

TEST(FilContent, RandomAccessMatchesSequential) {
  std::vector<uint8_t> all(10000), part(10000);
  fill_content(42, 0, all.data(), all.size());
  std::mt19937_64 g(1);
  for (int i = 0; i < 500; ++i) {
    size_t a = g() % all.size(), n = g() % (all.size() - a);
    fill_content(42, a, part.data(), n);
    ASSERT_EQ(std::memcmp(part.data(), all.data() + a, n), 0) << a << " " << n;
  }
  std::vector<uint8_t> other(100);
  fill_content(43, 0, other.data(), other.size());
  EXPECT_NE(std::memcmp(other.data(), all.data(), 100), 0);
}

TEST(FilGen, DeterministicPerSeed) {
  TempDir a, b, c;
  auto ra = generate(a.path + "/ds", small(9));
  auto rb = generate(b.path + "/ds", small(9));
  auto rc = generate(c.path + "/ds", small(10));
  EXPECT_EQ(ra.manifest.dump(), rb.manifest.dump());
  EXPECT_NE(ra.manifest.dump(), rc.manifest.dump());
  EXPECT_EQ(read_all(a / "ds/manifest.json"), read_all(b / "ds/manifest.json"));
  // The plan agrees with what was written (paths, sizes, kinds).
  auto plan = plan_dataset(small(9));
  ASSERT_EQ(plan.files.size(), ra.manifest.files.size());
  for (size_t i = 0; i < plan.files.size(); ++i) {
    EXPECT_EQ(plan.files[i].path, ra.manifest.files[i].path);
    EXPECT_EQ(plan.files[i].size, ra.manifest.files[i].size);
  }
  // Same bytes on disk.
  for (const auto& f : ra.manifest.files)
    ASSERT_TRUE(read_all(a / ("ds/" + f.path)) == read_all(b / ("ds/" + f.path))) << f.path;
}

TEST(FilGen, FilesMatchTheManifestAndHaveTheirLayout) {
  TempDir d;
  auto o = small(3);
  o.block_hashes = true;
  auto r = generate(d / "ds", o);
  EXPECT_EQ(r.manifest.files.size(), 60u);
  for (const char* k : {"empty", "tiny", "tail", "sparse", "fragmented", "regular"}) EXPECT_GT(r.kinds[k], 0u) << k;
  std::set<std::string> dirs;
  bool one_byte = false;
  for (const auto& f : r.manifest.files) {
    auto bytes = read_all(d / ("ds/" + f.path));
    ASSERT_EQ(bytes.size(), f.size) << f.path;
    EXPECT_EQ(XXH3_64bits(bytes.data(), bytes.size()), f.xxh3) << f.path;
    std::vector<uint8_t> exp(bytes.size());
    ASSERT_TRUE(Manifest::expected(f, 0, exp.data(), exp.size()));
    EXPECT_TRUE(exp == bytes) << f.path;
    EXPECT_EQ(f.blocks.size(), (f.size + 4095) / 4096) << f.path;
    if (f.size == 1) one_byte = true;
    if (f.kind == "tail") {
      EXPECT_NE(f.size % 4096, 0u) << f.path;
    }
    auto slash = f.path.rfind('/');
    if (slash != std::string::npos) dirs.insert(f.path.substr(0, slash));
  }
  EXPECT_TRUE(one_byte);
  EXPECT_GE(dirs.size(), 8u);
  // Where FIEMAP works, the sparse files have gaps (fragmentation depends on the file
  // system's allocator: checked on XFS in run_test).
  for (const auto& f : r.manifest.files) {
    if (f.kind != "sparse") continue;
    try {
      auto fx = extents::resolve(d / ("ds/" + f.path));
      uint64_t mapped = 0;
      for (auto& e : fx.extents)
        if (!e.has(extents::kExtUnwritten)) mapped += std::min(e.end(), f.size) - std::min(e.logical, f.size);
      EXPECT_LT(mapped, f.size) << f.path << " has no hole";
    } catch (const Error& e) {
      GTEST_SKIP() << "FIEMAP not available under " << d.path << ": " << e.what();
    }
  }
}

TEST(FilGen, RefusesAForeignDirectoryAndReplacesAPreviousSet) {
  TempDir d;
  std::ofstream(d / "other.txt") << "x";
  EXPECT_THROW(generate(d.path, small(1)), Error);
  auto o = small(1);
  generate(d / "ds", o);
  o.count = 30;
  o.seed = 2;
  auto r = generate(d / "ds", o);  // over the previous set
  auto m = Manifest::load(d / "ds/manifest.json");
  EXPECT_EQ(m.files.size(), 30u);
  size_t on_disk = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(d / "ds"))
    if (e.is_regular_file()) ++on_disk;
  EXPECT_EQ(on_disk, 31u);  // the files and the manifest: nothing left over
}

TEST(FilManifest, RoundTripAndErrors) {
  auto m = plan_dataset(small(5));
  m.files[0].blocks = {1, 2, 0xffffffffffffffffull};
  auto back = Manifest::parse(m.dump());
  EXPECT_EQ(back.dump(), m.dump());
  EXPECT_THROW(Manifest::parse("{}"), Error);
  EXPECT_THROW(Manifest::parse("not json"), Error);
  EXPECT_THROW(Manifest::parse(R"({"format":"aisio-fil-manifest","version":1,"files":[{"path":"../x","size":1,"xxh3":"0"}]})"),
               Error);
  EXPECT_THROW(Manifest::parse(R"({"format":"aisio-fil-manifest","version":2,"files":[]})"), Error);
}
