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
#include "common/expect_error.hpp"
#include "extents/fiemap.hpp"
#include "fil/content.hpp"
#include "fil/gen.hpp"
#include "fil/helpers.hpp"
#include "fil/manifest.hpp"

using aisio::test::expect_error;

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

// The content rule of content.hpp restated here from its comment, byte by byte and
// without fil/content.hpp, so the generator is checked against something it did not
// compute itself. FilContent.PublishedSplitMix64Vectors pins ref_splitmix64 to the
// published reference outputs.
constexpr uint64_t kRefGolden = 0x9E3779B97F4A7C15ull;
uint64_t ref_splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
// Byte o of a file with key K: byte (o % 8) of the little-endian word
// splitmix64(K + (o / 8 + 1) * golden).
uint8_t ref_byte(uint64_t key, uint64_t o) {
  return uint8_t(ref_splitmix64(key + (o / 8 + 1) * kRefGolden) >> (8 * (o % 8)));
}
// The key of file i of a data set with `seed` ("fil-data" as the seed's tweak).
uint64_t ref_key(uint64_t seed, uint64_t index) {
  return ref_splitmix64(ref_splitmix64(seed ^ 0x66696c2d64617461ull) + index * kRefGolden);
}
// The file index in a generated name: ".../f000012-sparse.bin" -> 12.
uint64_t index_of(const std::string& path) {
  size_t f = path.rfind("/f");
  f = f == std::string::npos ? 1 : f + 2;
  return std::stoull(path.substr(f));
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
  const std::pair<const char*, const char*> bad[] = {
      {"", "size distribution '': use fixed:SIZE, uniform:MIN:MAX or lognormal:MEDIAN:SIGMA[:MAX]"},
      {"fixed", "size distribution 'fixed': use fixed:SIZE"},
      {"fixed:x", "size distribution 'fixed:x': invalid size 'x'"},
      {"uniform:5:1", "size distribution 'uniform:5:1': MAX < MIN"},
      {"lognormal:1K", "size distribution 'lognormal:1K': use fixed:SIZE"},
      {"normal:1:2", "size distribution 'normal:1:2': use fixed:SIZE"},
      {"lognormal:0:1", "size distribution 'lognormal:0:1': median must be > 0"},
      {"fixed:4Q", "size distribution 'fixed:4Q': invalid size '4Q'"},
  };
  for (auto [text, why] : bad) {
    SCOPED_TRACE(text);
    expect_error([&] { SizeDist::parse(text); }, Errc::invalid_argument, why);
  }
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

TEST(FilContent, PublishedSplitMix64Vectors) {
  // With key 0, word w is the (w + 1)-th output of SplitMix64 started from state 0;
  // the reference implementation (Vigna, splitmix64.c) publishes the first three.
  const uint64_t published[3] = {0xe220a8397b1dcdafull, 0x6e789e6aa1b965f4ull, 0x06c45d188009454full};
  uint8_t got[24];
  fill_content(0, 0, got, sizeof got);
  for (size_t i = 0; i < sizeof got; ++i) {
    EXPECT_EQ(got[i], uint8_t(published[i / 8] >> (8 * (i % 8)))) << "byte " << i;
    EXPECT_EQ(ref_byte(0, i), uint8_t(published[i / 8] >> (8 * (i % 8)))) << "byte " << i;
  }
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
    // Independently of Manifest::expected / fill_content: the key is the rule's key for
    // the file's index, and every byte is the rule's byte (zero outside the data
    // segments of a sparse file).
    ASSERT_TRUE(f.key) << f.path;
    EXPECT_EQ(*f.key, ref_key(o.seed, index_of(f.path))) << f.path;
    std::vector<bool> data(f.size, !f.sparse);
    for (const auto& s : f.segments) {
      ASSERT_LE(s.off + s.len, f.size) << f.path;
      for (uint64_t k = s.off; k < s.off + s.len; ++k) data[k] = true;
    }
    for (uint64_t k = 0; k < f.size; ++k) {
      uint8_t want = data[k] ? ref_byte(*f.key, k) : 0;
      if (bytes[k] != want) {
        ADD_FAILURE() << f.path << ": byte " << k << " is " << int(bytes[k]) << ", the content rule says " << int(want);
        break;
      }
    }
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
      // Only a file system without FIEMAP is a reason to skip; any other error is a failure.
      if (e.code() != Errc::not_supported || std::string(e.what()).find("FIEMAP") == std::string::npos)
        FAIL() << "FIEMAP of " << f.path << ": " << e.what();
      GTEST_SKIP() << "FIEMAP not available under " << d.path << ": " << e.what();
    }
  }
}

TEST(FilGen, RefusesAForeignDirectoryAndReplacesAPreviousSet) {
  TempDir d;
  std::ofstream(d / "other.txt") << "x";
  expect_error([&] { generate(d.path, small(1)); }, Errc::invalid_argument,
               d.path + " is not empty and holds no manifest.json: give an empty or new directory");
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
  expect_error([] { Manifest::parse("{}"); }, Errc::protocol, "not an aisio fil manifest (format field missing)");
  expect_error([] { Manifest::parse("not json"); }, Errc::protocol, "manifest: [json.exception.parse_error");
  expect_error(
      [] {
        Manifest::parse(
            R"({"format":"aisio-fil-manifest","version":1,"files":[{"path":"../x","size":1,"xxh3":"0"}]})");
      },
      Errc::protocol, "manifest: bad file path '../x'");
  expect_error([] { Manifest::parse(R"({"format":"aisio-fil-manifest","version":2,"files":[]})"); }, Errc::protocol,
               "manifest version 2 is not supported");
}

// The manifest is created 0644 (less the umask), as every other file of the data set:
// never group- or world-writable, whatever umask the caller runs under.
TEST(FilManifest, SavedMode0644UnderAnyUmask) {
  TempDir t;
  const std::string p = t / "m.json";
  const mode_t old = ::umask(0);
  plan_dataset(small(2)).save(p);
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0) << std::strerror(errno);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
}
