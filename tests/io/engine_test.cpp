// Engines deliver every byte of every file, in order, whatever the sizes, queue depth
// and batch; the unvme engine follows extents (holes, unwritten, unaligned, runs over
// MDTS, many extents per chunk) on the software controller.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>

#include "backends/registry.hpp"
#include "common/error.hpp"
#include "common/uring_probe.hpp"
#include "common/expect_error.hpp"
#include "emu/controller.hpp"
#include "fil/helpers.hpp"
#include "io/engine.hpp"
#include "io/cached_block_reader.hpp"
#include "io/hybrid_poll.hpp"
#include "io/unvme.hpp"
#include "nvme/controller.hpp"

using aisio::test::expect_error;

using namespace aisio;
using filtest::TempDir;
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> pattern(size_t n, uint64_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937_64 g(seed);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(g() >> 17);
  return v;
}

// Collects each file's bytes and checks the engine's ordering promises.
struct Collect : io::FileSink {
  struct F {
    bool begun = false, ended = false;
    uint64_t size = 0;
    std::vector<uint8_t> bytes;
    std::string error;
  };
  std::map<uint32_t, F> files;
  std::vector<std::string> violations;
  void begin(const io::FileTask& t, uint64_t size) override {
    auto& f = files[t.id];
    if (f.begun) violations.push_back("begin twice: " + t.rel);
    f.begun = true;
    f.size = size;
  }
  void data(const io::FileTask& t, uint64_t off, const uint8_t* p, size_t n) override {
    auto& f = files[t.id];
    if (!f.begun || f.ended) violations.push_back("data outside begin/end: " + t.rel);
    if (off != f.bytes.size()) violations.push_back("out of order: " + t.rel + " at " + std::to_string(off));
    f.bytes.insert(f.bytes.end(), p, p + n);
  }
  void end(const io::FileTask& t, const std::string& e) override {
    auto& f = files[t.id];
    if (f.ended) violations.push_back("end twice: " + t.rel);
    f.ended = true;
    f.error = e;
  }
};

// One engine of `path` reading `tasks` from the start; its stats stay readable.
struct Read {
  std::unique_ptr<io::FileReader> eng;
  Collect c;
};
Read read_all(io::FileBackend& path, const std::vector<io::FileTask>& tasks) {
  Read r{path.make_reader(0), {}};
  r.eng->read(tasks, r.c);
  return r;
}

void write_file(const std::string& p, const std::vector<uint8_t>& v) {
  fs::create_directories(fs::path(p).parent_path());
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, v.data(), v.size()), ssize_t(v.size()));
  ::close(fd);
}

const std::vector<uint64_t> kSizes = {0, 1, 2, 511, 512, 513, 4095, 4096, 4097, 65536, 262143, 262144, 262145,
                                      1 << 20, (1 << 20) + 4097, 3 * (1 << 20) + 1};

}  // namespace

class IoLocalPaths : public ::testing::TestWithParam<std::string> {};

TEST_P(IoLocalPaths, EveryByteInOrder) {
  const std::string name = GetParam();
  std::string why;
  if (name.rfind("io_uring", 0) == 0 && !uring_available(&why)) GTEST_SKIP() << why;
  TempDir d;
  std::vector<io::FileTask> tasks;
  std::map<uint32_t, std::vector<uint8_t>> want;
  for (size_t i = 0; i < kSizes.size(); ++i) {
    std::string rel = "d" + std::to_string(i % 3) + "/f" + std::to_string(i);
    want[uint32_t(i)] = pattern(kSizes[i], i + 1);
    write_file(d.path + "/" + rel, want[uint32_t(i)]);
    tasks.push_back({uint32_t(i), rel, kSizes[i]});
  }
  tasks.push_back({uint32_t(kSizes.size()), "missing/file", 10});
  for (uint32_t qd : {1u, 3u, 32u})
    for (size_t io_size : {size_t(4096), size_t(256 << 10)}) {
      io::ReadOptions eo{qd, io_size};
      auto p = io::make_kernel_path(name, d.path, eo);
      auto eng = p->make_reader(0);
      Collect c;
      // Two batches, so the engine is reused.
      eng->read(std::span<const io::FileTask>(tasks.data(), 5), c);
      eng->read(std::span<const io::FileTask>(tasks.data() + 5, tasks.size() - 5), c);
      ASSERT_TRUE(c.violations.empty()) << c.violations[0];
      for (const auto& t : tasks) {
        auto& f = c.files[t.id];
        ASSERT_TRUE(f.ended) << t.rel;
        if (t.rel == "missing/file") {
          EXPECT_NE(f.error.find("No such file"), std::string::npos) << f.error;
          continue;
        }
        ASSERT_EQ(f.error, "") << t.rel;
        ASSERT_EQ(f.bytes.size(), want[t.id].size()) << name << " " << t.rel << " qd " << qd << " io " << io_size;
        ASSERT_TRUE(f.bytes == want[t.id]) << name << " " << t.rel << " qd " << qd << " io " << io_size;
      }
      EXPECT_EQ(eng->stats().files, tasks.size() - (name == "posix" || name == "posix-direct" ? 1 : 0));
    }
}

// A task with a byte range (a pread): only [offset, offset + length) clipped at EOF is
// delivered, in order from offset, and begin() is told that many bytes.
TEST_P(IoLocalPaths, ARangeOfAFile) {
  const std::string name = GetParam();
  std::string why;
  if (name.rfind("io_uring", 0) == 0 && !uring_available(&why)) GTEST_SKIP() << why;
  const bool direct = name == "posix-direct" || name == "io_uring";
  TempDir d;
  const auto want = pattern(3 * (1 << 20) + 4097, 9);
  write_file(d.path + "/f", want);
  struct Range {
    uint64_t off, len;
  };
  // O_DIRECT reads need 4 KiB aligned offsets; the others take any.
  std::vector<Range> ranges = {{0, 4096}, {8192, 1 << 20}, {4096, UINT64_MAX}, {want.size() + 4096, 10},
                               {1 << 20, 0}, {(3 << 20), 100000}};
  if (!direct) ranges.insert(ranges.end(), {{1, 1}, {1234, 300001}, {want.size() - 7, 100}});
  io::ReadOptions eo{4, 64 << 10};
  auto p = io::make_kernel_path(name, d.path, eo);
  auto eng = p->make_reader(0);
  for (const auto& r : ranges) {
    struct : io::FileSink {
      uint64_t told = UINT64_MAX, next = 0;
      std::vector<uint8_t> bytes;
      std::string error = "(no end)";
      bool order_ok = true;
      void begin(const io::FileTask& t, uint64_t size) override {
        told = size;
        next = std::min<uint64_t>(t.offset, t.size);
      }
      void data(const io::FileTask&, uint64_t off, const uint8_t* p, size_t n) override {
        if (off != next) order_ok = false;
        next = off + n;
        bytes.insert(bytes.end(), p, p + n);
      }
      void end(const io::FileTask&, const std::string& e) override { error = e; }
    } sink;
    io::FileTask t{0, "f", want.size(), r.off, r.len};
    eng->read(std::span<const io::FileTask>(&t, 1), sink);
    const uint64_t a = std::min<uint64_t>(r.off, want.size());
    const uint64_t b = r.len >= want.size() - a ? want.size() : a + r.len;
    ASSERT_EQ(sink.error, "") << name << " at " << r.off;
    EXPECT_TRUE(sink.order_ok) << name << " at " << r.off;
    EXPECT_EQ(sink.told, b - a) << name << " at " << r.off;
    ASSERT_EQ(sink.bytes.size(), b - a) << name << " at " << r.off;
    EXPECT_TRUE(std::equal(sink.bytes.begin(), sink.bytes.end(), want.begin() + std::ptrdiff_t(a)))
        << name << " at " << r.off << " len " << r.len;
  }
}

INSTANTIATE_TEST_SUITE_P(IoPaths, IoLocalPaths, ::testing::Values("posix", "posix-direct", "io_uring", "io_uring-buffered"),
                         [](const auto& i) {
                           std::string s = i.param;
                           for (auto& ch : s)
                             if (ch == '-') ch = '_';
                           return s;
                         });

TEST(IoPaths, KnownPathsAndExtensionPoints) {
  const backends::Registry reg;
  for (const char* n : {"posix", "posix-direct", "io_uring", "unvme", "unvme-gpu", "gpu", "cufile"})
    ASSERT_NE(reg.find_file_path(n), nullptr) << n;
  for (const char* n : {"unvme-gpu", "gpu", "cufile"}) {
    EXPECT_FALSE(reg.find_file_path(n)->built);
    EXPECT_NE(reg.find_file_path(n)->why_not.find("not built"), std::string::npos);
  }
  EXPECT_EQ(reg.find_file_path("nope"), nullptr);
  expect_error([] { io::make_kernel_path("posix", "/", {32, 1000}); }, Errc::invalid_argument,
               "--io-size 1000 must be a multiple of 4096 (>= 4096)");
}

// ---- unvme with hand-made extents ------------------------------------------------

namespace {

struct FakeSource : io::ExtentSource {
  std::map<std::string, io::ResolvedFile> files;
  uint64_t offset = 0;
  io::ResolvedFile resolve(const std::string& rel) override {
    auto it = files.find(rel);
    if (it == files.end()) throw Error(Errc::invalid_argument, rel + ": No such file");
    return it->second;
  }
  std::string name() const override { return "fake"; }
  std::string describe() const override { return "hand-made extents"; }
  uint64_t device_offset() const override { return offset; }
};

struct Rig {
  explicit Rig(uint32_t lba, uint8_t mdts = 5) : dev(config(lba, mdts)) {
    dev.start();
    ctrl = nvme::Controller::create(dev.bar0(), dev.dma());
    qp = ctrl->create_queue_pair({.depth = 16});
  }
  static emu::EmuConfig config(uint32_t lba, uint8_t mdts) {
    emu::EmuConfig c;
    c.mdts = mdts;
    c.namespaces = {emu::NamespaceConfig{32ull << 20, lba, emu::Backing::ram, ""}};
    return c;
  }
  // Writes bytes at a byte offset of the namespace (read-modify-write of whole LBAs).
  void put(uint64_t off, const uint8_t* p, size_t n) {
    uint32_t lba = ctrl->ns(1).lba_size;
    uint64_t a = off / lba * lba, b = (off + n + lba - 1) / lba * lba;
    auto buf = ctrl->dma()->alloc(size_t(b - a));
    for (uint64_t x = a; x < b; x += 65536) {
      uint32_t nlb = uint32_t(std::min<uint64_t>(65536, b - x) / lba);
      ASSERT_TRUE(qp->read(1, x / lba, nlb, buf, size_t(x - a)).ok());
    }
    std::memcpy(buf.data() + (off - a), p, n);
    for (uint64_t x = a; x < b; x += 65536) {
      uint32_t nlb = uint32_t(std::min<uint64_t>(65536, b - x) / lba);
      ASSERT_TRUE(qp->write(1, x / lba, nlb, buf, size_t(x - a)).ok());
    }
  }
  emu::SoftController dev;
  std::shared_ptr<nvme::Controller> ctrl;
  std::unique_ptr<nvme::QueuePair> qp;
};

// A file laid out as `exts` (logical, physical, length, flags); returns its bytes.
std::vector<uint8_t> lay_out(Rig& r, FakeSource& src, const std::string& rel, uint64_t size,
                             std::vector<extents::Extent> exts, uint64_t seed) {
  auto content = pattern(size_t(size), seed);
  std::vector<uint8_t> expect(size_t(size), 0);
  for (auto& e : exts) {
    uint64_t n = std::min(e.length, size > e.logical ? size - e.logical : 0);
    if (!e.reads_as_zeros() && n) {
      r.put(e.physical + src.offset, content.data() + e.logical, size_t(n));
      std::memcpy(expect.data() + e.logical, content.data() + e.logical, size_t(n));
    } else if (n) {
      // Garbage on the device where an unwritten extent points: must not be read.
      auto junk = pattern(size_t(n), seed ^ 0xdead);
      r.put(e.physical + src.offset, junk.data(), size_t(n));
    }
  }
  src.files[rel] = {size, std::move(exts)};
  return expect;
}

}  // namespace

TEST(IoUnvme, ExtentsHolesUnwrittenUnalignedAndLongRuns) {
  for (uint32_t lba : {512u, 4096u}) {
    Rig r(lba);
    auto src = std::make_shared<FakeSource>();
    src->offset = lba == 512 ? 1 << 20 : 0;  // a partition start, for the 512 B case
    using extents::Extent;
    const uint64_t K = 4096, M = 1 << 20;
    std::map<std::string, std::vector<uint8_t>> want;
    // Contiguous, 3 MiB + 1: runs longer than MDTS (128 KiB) and than io_size.
    want["contig"] = lay_out(r, *src, "contig", 3 * M + 1, {{0, 4 * M, 3 * M + K, 0}}, 1);
    // Reversed, many small extents: several runs per chunk.
    {
      std::vector<Extent> ex;
      for (uint64_t i = 0; i < 40; ++i) ex.push_back({i * 8 * K, 12 * M - i * 16 * K, 8 * K, 0});
      want["fragmented"] = lay_out(r, *src, "fragmented", 40 * 8 * K - 100, ex, 2);
    }
    // Holes at the start, middle, end; an unwritten extent with junk behind it.
    want["sparse"] = lay_out(r, *src, "sparse", 900 * K + 7,
                             {{64 * K, 16 * M, 64 * K, 0},
                              {200 * K, 17 * M, 100 * K, extents::kExtUnwritten},
                              {300 * K, 18 * M, 400 * K, 0}},
                             3);
    // Not aligned to the namespace's LBAs (physical offset + 100): the bounce path.
    want["unaligned"] = lay_out(r, *src, "unaligned", 300 * K + 5, {{0, 20 * M + 100, 300 * K + 5, 0}}, 4);
    want["tiny"] = lay_out(r, *src, "tiny", 1, {{0, 26 * M, K, 0}}, 5);
    want["empty"] = lay_out(r, *src, "empty", 0, {}, 6);
    want["allhole"] = lay_out(r, *src, "allhole", 70 * K + 3, {}, 7);

    std::vector<io::FileTask> tasks;
    for (auto& [rel, v] : want) tasks.push_back({uint32_t(tasks.size()), rel, v.size()});
    tasks.push_back({uint32_t(tasks.size()), "missing", 1});
    for (uint32_t qd : {1u, 16u})
      for (size_t io_size : {size_t(4096), size_t(1 << 20)}) {
        auto path = io::make_unvme_path(backends::target_of(r.ctrl), src, {qd, io_size});
        auto [eng, c] = read_all(*path, tasks);
        ASSERT_TRUE(c.violations.empty()) << c.violations[0];
        for (const auto& t : tasks) {
          auto& f = c.files[t.id];
          ASSERT_TRUE(f.ended) << t.rel;
          if (t.rel == "missing") {
            EXPECT_NE(f.error.find("No such file"), std::string::npos) << f.error;
            continue;
          }
          ASSERT_EQ(f.error, "") << t.rel;
          const auto& w = want[t.rel];
          if (f.bytes == w) continue;
          size_t first = 0;
          while (first < f.bytes.size() && first < w.size() && f.bytes[first] == w[first]) ++first;
          ASSERT_TRUE(f.bytes == w) << "lba " << lba << " " << t.rel << " qd " << qd << " io " << io_size
                                              << ": got " << f.bytes.size() << " bytes, first difference at " << first;
        }
        const auto& st = eng->stats();
        EXPECT_GT(st.zero_fill_bytes, 0u);
        EXPECT_GT(st.fallback_reads, 0u);  // the unaligned file
      }
  }
}

TEST(IoUnvme, DeviceErrorIsReportedPerFile) {
  Rig r(512);
  auto src = std::make_shared<FakeSource>();
  const uint64_t ns_bytes = r.ctrl->ns(1).bytes();
  src->files["past-end"] = {8192, {{0, ns_bytes - 4096, 8192, 0}}};  // runs off the namespace
  auto content = pattern(4096, 9);
  r.put(0, content.data(), content.size());
  src->files["good"] = {4096, {{0, 0, 4096, 0}}};
  auto path = io::make_unvme_path(backends::target_of(r.ctrl), src, {8, 4096});
  auto eng = path->make_reader(0);
  Collect c;
  std::vector<io::FileTask> tasks = {{0, "past-end", 8192}, {1, "good", 4096}};
  eng->read(tasks, c);
  EXPECT_NE(c.files[0].error.find("NVMe Read"), std::string::npos) << c.files[0].error;
  EXPECT_EQ(c.files[1].error, "");
  EXPECT_TRUE(c.files[1].bytes == content);
}

// --poll hybrid: the same bytes as spinning, and the engine did sleep between polls.
TEST(IoUnvme, HybridPollingDeliversEveryByte) {
  Rig r(512);
  auto src = std::make_shared<FakeSource>();
  using extents::Extent;
  const uint64_t K = 4096, M = 1 << 20;
  std::map<std::string, std::vector<uint8_t>> want;
  want["contig"] = lay_out(r, *src, "contig", 6 * M + 3, {{0, 1 * M, 7 * M, 0}}, 21);
  {
    std::vector<Extent> ex;
    for (uint64_t i = 0; i < 64; ++i) ex.push_back({i * 16 * K, 24 * M - i * 32 * K, 16 * K, 0});
    want["fragmented"] = lay_out(r, *src, "fragmented", 64 * 16 * K - 1, ex, 22);
  }
  want["sparse"] = lay_out(r, *src, "sparse", 700 * K + 9, {{100 * K, 10 * M, 300 * K, 0}}, 23);
  std::vector<io::FileTask> tasks;
  for (auto& [rel, v] : want) tasks.push_back({uint32_t(tasks.size()), rel, v.size()});
  for (uint32_t qd : {1u, 8u}) {
    io::ReadOptions eo{qd, size_t(256) << 10, io::PollMode::hybrid};
    auto path = io::make_unvme_path(backends::target_of(r.ctrl), src, eo);
    EXPECT_NE(path->describe().find("polled (hybrid"), std::string::npos) << path->describe();
    auto [eng, c] = read_all(*path, tasks);
    ASSERT_TRUE(c.violations.empty()) << c.violations[0];
    for (const auto& t : tasks) {
      auto& f = c.files[t.id];
      ASSERT_TRUE(f.ended) << t.rel;
      ASSERT_EQ(f.error, "") << t.rel;
      ASSERT_TRUE(f.bytes == want[t.rel]) << t.rel << " qd " << qd << ": got " << f.bytes.size() << " bytes";
    }
    EXPECT_GT(eng->stats().poll_sleeps, 0u) << "qd " << qd;
  }
  // Spin, the default, never sleeps and says so.
  auto spin = io::make_unvme_path(backends::target_of(r.ctrl), src, {8, size_t(256) << 10});
  EXPECT_NE(spin->describe().find("polled (spin)"), std::string::npos) << spin->describe();
  EXPECT_EQ(read_all(*spin, tasks).eng->stats().poll_sleeps, 0u);
  EXPECT_EQ(io::parse_poll_mode("hybrid"), io::PollMode::hybrid);
  expect_error([] { io::parse_poll_mode("busy"); }, Errc::invalid_argument, "--poll 'busy': use spin or hybrid");
}

// A wait of a known length: the next wait sleeps in steps that halve towards the
// estimated end, spins close to it, and once the wait is overdue sleeps again (backs
// off) rather than spinning on.
TEST(IoUnvme, HybridPollSleepsTowardsTheEstimateThenBacksOff) {
  io::HybridPoll hp;
  EXPECT_FALSE(hp.idle()) << "no estimate yet: spin";
  // 20 ms: room for several capped sleeps even when a loaded machine stretches each one.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  hp.progress();
  const uint64_t est = hp.estimate_ns();
  ASSERT_GE(est, 20'000'000u);
  using Clock = std::chrono::steady_clock;
  auto t0 = Clock::now();
  auto since = [&] { return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count()); };
  // Before the estimated end: more than one sleep (the timer may overshoot into the
  // overdue part, so the short spin near the end is not always seen).
  uint32_t sleeps = 0;
  while (since() < est)
    if (hp.idle()) ++sleeps;
  EXPECT_GE(sleeps, 2u) << "estimate " << est << " ns";
  EXPECT_EQ(hp.sleeps(), sleeps);
  // Overdue: sleeps again rather than spinning.
  EXPECT_TRUE(hp.idle()) << "overdue: back off, do not spin";
  EXPECT_EQ(hp.sleeps(), sleeps + 1);
  hp.progress();
  EXPECT_GT(hp.estimate_ns(), est / 2);
}

// The XFS decoder's read cache: small reads are served from aligned pages read once
// (the same bytes as the device), a large one always goes to the device, a failed one
// is not kept, the device's last partial page is read short.
TEST(IoXfsSource, CachedBlockReaderServesSmallReadsFromPages) {
  const uint64_t P = io::CachedBlockReader::kPage;
  struct Counting : extents::BlockReader {
    uint32_t reads = 0;
    bool fail = false;
    uint64_t bytes = 0;
    void read(uint64_t off, void* buf, size_t len) override {
      ++reads;
      if (fail) throw Error(Errc::io, "device gone");
      if (off + len > bytes) throw Error(Errc::io, "past the end");
      for (size_t i = 0; i < len; ++i) static_cast<uint8_t*>(buf)[i] = uint8_t((off + i) * 7 + 3);
    }
    uint64_t size() override { return bytes; }
  };
  auto dev = std::make_shared<Counting>();
  dev->bytes = 10 * P + 4096;
  io::CachedBlockReader c(dev);
  auto want = [](uint64_t off, size_t len) {
    std::vector<uint8_t> v(len);
    for (size_t i = 0; i < len; ++i) v[i] = uint8_t((off + i) * 7 + 3);
    return v;
  };
  std::vector<uint8_t> a(4096), b(512);
  c.read(8192, a.data(), a.size());
  c.read(8192 + 100, b.data(), b.size());  // the same page
  EXPECT_EQ(dev->reads, 1u);
  EXPECT_TRUE(a == want(8192, 4096));
  EXPECT_TRUE(b == want(8192 + 100, 512));
  EXPECT_EQ(c.hits(), 1u);
  std::vector<uint8_t> across(8192);
  c.read(P - 4096, across.data(), across.size());  // pages 0 (cached) and 1
  EXPECT_EQ(dev->reads, 2u);
  EXPECT_TRUE(across == want(P - 4096, 8192));
  std::vector<uint8_t> tail(1000);
  c.read(10 * P + 3000, tail.data(), tail.size());  // the short last page
  EXPECT_TRUE(tail == want(10 * P + 3000, 1000));
  expect_error([&] { c.read(10 * P + 4000, tail.data(), tail.size()); }, Errc::io, "past the end");
  const uint32_t before = dev->reads;
  std::vector<uint8_t> big(P + 512);
  c.read(0, big.data(), big.size());
  c.read(0, big.data(), big.size());
  EXPECT_EQ(dev->reads, before + 2);
  dev->fail = true;
  expect_error([&] { c.read(5 * P, a.data(), 4096); }, Errc::io, "device gone");
  expect_error([&] { c.read(5 * P, a.data(), 4096); }, Errc::io, "device gone");
  EXPECT_EQ(dev->reads, before + 4);
}
