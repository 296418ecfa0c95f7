// End-to-end runs: the unvme engine against software controllers in this process, the
// kernel engines against a temporary file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <optional>

#include "common/error.hpp"
#include "common/expect_error.hpp"
#include "emu/controller.hpp"
#include "perf/engines.hpp"
#include "perf/report.hpp"
#include "perf/runner.hpp"
#include "target/target.hpp"

using aisio::test::expect_error;

namespace aisio::perf {
namespace {

// The targets the run opened, kept alive past it to read the controllers' counters.
struct Opened {
  std::vector<std::shared_ptr<target::Target>> targets;
  emu::SoftController& dev(size_t i) const { return *targets.at(i)->soft_controller(); }
};

RunHooks hooks_for(Opened& seen) {
  RunHooks h;
  h.open = [&seen](const std::string& handle) {
    auto t = target::open(handle);
    if (handle.rfind("embedded", 0) == 0) seen.targets.push_back(t);
    return t;
  };
  return h;
}

PerfOptions quiet() {
  PerfOptions o;
  o.progress = false;
  o.command_line = "perf_test";
  o.pin = false;  // CI machines are shared
  return o;
}

TEST(PerfRun, UnvmeCountsEveryIo) {
  PerfOptions o = quiet();
  o.targets = {"embedded:64M"};
  o.ios = 3000;
  o.qd = 16;
  o.threads = 2;
  o.bs = 4096;
  o.lat_sample = 1;
  Opened seen;
  RunResult r = run(o, hooks_for(seen));
  ASSERT_EQ(r.errors(), 0u) << r.total().first_error;
  ASSERT_EQ(r.threads.size(), 2u);
  for (auto& t : r.threads) {
    EXPECT_EQ(t.dir[0].ios, 3000u);
    EXPECT_EQ(t.dir[1].ios, 0u);
    EXPECT_EQ(t.dir[0].bytes, 3000u * 4096);
    EXPECT_EQ(t.dir[0].lat.count(), 3000u);  // every I/O sampled
    EXPECT_GT(t.seconds, 0);
    EXPECT_GT(t.iops(), 0);
  }
  ASSERT_EQ(seen.targets.size(), 1u);
  // The controller executed exactly what we counted (plus nothing else on I/O queues).
  EXPECT_EQ(seen.dev(0).stats().read_commands, 6000u);
  EXPECT_EQ(seen.dev(0).stats().write_commands, 0u);
  auto j = to_json(r);
  EXPECT_EQ(j["jobs"][0]["read"]["total_ios"], 3000u);
  EXPECT_TRUE(j["jobs"][0]["read"]["lat_ns"]["percentile"].contains("99.900000"));
  EXPECT_EQ(j["command_line"], "perf_test");
  EXPECT_FALSE(j["machine"]["hostname"].get<std::string>().empty());
  EXPECT_FALSE(j["commit"].get<std::string>().empty());
  EXPECT_NE(to_text(r).find("total"), std::string::npos);
}

TEST(PerfRun, UnvmeMixedSplitAndSequential) {
  PerfOptions o = quiet();
  o.targets = {"embedded:16M"};
  o.rw = RwMode::randrw;
  o.rwmix = 70;
  o.ios = 4000;
  o.qd = 8;
  o.bs = 64 * 1024;  // > MDTS (128 KiB)? no: 2 pages and more, a PRP list per slot
  Opened seen;
  RunResult r = run(o, hooks_for(seen));
  ASSERT_EQ(r.errors(), 0u) << r.total().first_error;
  const auto& t = r.threads[0];
  EXPECT_EQ(t.dir[0].ios + t.dir[1].ios, 4000u);
  EXPECT_NEAR(double(t.dir[0].ios) / 4000, 0.7, 0.05);
  EXPECT_EQ(seen.dev(0).stats().read_commands, t.dir[0].ios);
  EXPECT_EQ(seen.dev(0).stats().write_commands, t.dir[1].ios);

  // Larger than MDTS (emu default: 128 KiB): the queue splits every I/O.
  PerfOptions s = quiet();
  s.targets = {"embedded:16M"};
  s.rw = RwMode::read;
  s.bs = 512 * 1024;
  s.ios = 40;
  s.qd = 2;
  Opened seen2;
  RunResult r2 = run(s, hooks_for(seen2));
  ASSERT_EQ(r2.errors(), 0u) << r2.total().first_error;
  EXPECT_EQ(r2.threads[0].dir[0].ios, 40u);
  EXPECT_EQ(seen2.dev(0).stats().read_commands, 40u * 4);
  EXPECT_EQ(seen2.dev(0).stats().bytes_read, 40u * 512 * 1024);
}

TEST(PerfRun, EmuFarmRuntimeAndSeveralDevices) {
  PerfOptions o = quiet();
  o.emu.devices = 3;
  o.emu.ns_bytes = 1ull << 30;
  o.runtime_s = 0.3;
  o.ramp_s = 0.1;
  o.qd = 8;
  o.bs = 512;
  o.lat = false;
  RunResult r = run(o);
  ASSERT_EQ(r.errors(), 0u) << r.total().first_error;
  EXPECT_EQ(r.devices.size(), 3u);
  EXPECT_GT(r.threads[0].dir[0].ios, 0u);
  EXPECT_EQ(r.threads[0].dir[0].lat.count(), 0u);  // --lat off
  EXPECT_NEAR(r.threads[0].seconds, 0.3, 0.25);
}

TEST(PerfRun, NvmeErrorIsNamed) {
  PerfOptions o = quiet();
  o.targets = {"embedded:16M"};
  o.ios = 100;
  o.qd = 4;
  RunHooks h;
  h.open = [](const std::string& handle) {
    auto t = target::open(handle);
    t->soft_controller()->faults().fail_next(1, nvme::Status::make(nvme::sct::MEDIA, nvme::sc::UNRECOVERED_READ_ERROR),
                                             emu::FaultMatch{nvme::nvm::READ, std::nullopt});
    return t;
  };
  RunResult r = run(o, h);
  ASSERT_EQ(r.errors(), 1u);
  EXPECT_NE(r.total().first_error.find("Unrecovered Read Error"), std::string::npos) << r.total().first_error;
  EXPECT_NE(r.total().first_error.find("embedded:16M"), std::string::npos) << r.total().first_error;
}

class TempFile {
 public:
  explicit TempFile(uint64_t bytes) {
    // Beside the test binary: a disk file system (O_DIRECT), unlike a tmpfs /tmp.
    path_ = std::filesystem::current_path() / ("perf_test_" + std::to_string(getpid()) + ".img");
    int fd = ::open(path_.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(ftruncate(fd, off_t(bytes)), 0);
    std::vector<char> buf(1 << 20, 'x');
    for (uint64_t o = 0; o < bytes; o += buf.size()) EXPECT_EQ(pwrite(fd, buf.data(), buf.size(), off_t(o)), ssize_t(buf.size()));
    fsync(fd);
    ::close(fd);
  }
  ~TempFile() { std::filesystem::remove(path_); }
  std::string path() const { return path_; }

 private:
  std::filesystem::path path_;
};

bool direct_io_works(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

TEST(PerfRun, PsyncOnFile) {
  TempFile f(8 << 20);
  PerfOptions o = quiet();
  o.engine = Engine::psync;
  o.targets = {f.path()};
  o.direct = direct_io_works(f.path());
  o.ios = 500;
  o.threads = 2;
  o.qd = 4;  // forced to 1, with a note
  o.rw = RwMode::randrw;
  RunResult r = run(o);
  ASSERT_EQ(r.errors(), 0u) << r.total().first_error;
  for (auto& t : r.threads) EXPECT_EQ(t.ios(), 500u);
  EXPECT_EQ(r.opts.qd, 1u);
  EXPECT_FALSE(r.notes.empty());
}

TEST(PerfRun, IoUringOnFile) {
  std::string why;
  if (!uring_available(&why)) GTEST_SKIP() << "io_uring not usable here: " << why;
  TempFile f(8 << 20);
  PerfOptions o = quiet();
  o.engine = Engine::io_uring;
  o.targets = {f.path()};
  o.direct = direct_io_works(f.path());
  o.ios = 2000;
  o.qd = 16;
  o.threads = 2;
  o.lat_sample = 1;
  RunResult r = run(o);
  ASSERT_EQ(r.errors(), 0u) << r.total().first_error;
  for (auto& t : r.threads) {
    EXPECT_EQ(t.dir[0].ios, 2000u);
    EXPECT_EQ(t.dir[0].lat.count(), 2000u);
  }
  // Polled completions need O_DIRECT and a file system that can poll. The kernel may
  // refuse them in exactly two ways, the only ones accepted here: no IOPOLL ring at all
  // (io_uring_queue_init fails), or every polled read completed with EOPNOTSUPP. Any
  // other error, or a wrong count, fails the test.
  auto refused_ring = [](const Error& e, const char* flag) {
    return e.code() == Errc::not_supported && std::string(e.what()).find(flag) != std::string::npos;
  };
  if (o.direct) {
    o.hipri = true;
    o.ios = 200;
    std::optional<RunResult> p;
    try {
      p = run(o);
    } catch (const Error& e) {
      if (refused_ring(e, "IOPOLL")) std::printf("io_uring --hipri: ring refused: %s\n", e.what());
      else ADD_FAILURE() << "io_uring --hipri: " << e.what();
    }
    if (p && p->errors()) {
      const std::string& why = p->total().first_error;
      if (why.find(std::strerror(EOPNOTSUPP)) != std::string::npos)
        std::printf("io_uring --hipri: polled reads refused: %s\n", why.c_str());
      else
        ADD_FAILURE() << "io_uring --hipri: " << why;
    } else if (p) {
      for (auto& t : p->threads) {
        EXPECT_EQ(t.dir[0].ios, 200u) << "io_uring --hipri";
        EXPECT_EQ(t.dir[0].lat.count(), 200u) << "io_uring --hipri";
      }
    }
  }
  o.hipri = false;
  o.sqpoll = true;
  o.ios = 200;
  std::optional<RunResult> p;
  try {
    p = run(o);
  } catch (const Error& e) {
    if (refused_ring(e, "SQPOLL")) std::printf("io_uring --sqpoll: ring refused: %s\n", e.what());
    else ADD_FAILURE() << "io_uring --sqpoll: " << e.what();
  }
  if (p) {
    ASSERT_EQ(p->errors(), 0u) << p->total().first_error;
    for (auto& t : p->threads) EXPECT_EQ(t.dir[0].ios, 200u) << "io_uring --sqpoll";
  }
}

TEST(PerfRun, KernelEngineRejectsMissingFile) {
  PerfOptions o = quiet();
  o.engine = Engine::psync;
  o.targets = {"/nonexistent/aisio-perf"};
  o.ios = 1;
  expect_error([&] { run(o); }, Errc::system, "open /nonexistent/aisio-perf: No such file or directory");
}

}  // namespace
}  // namespace aisio::perf
