// target::open: each handle form gives a working controller; bad handles are clear
// errors; homid: gives queue pairs from the daemon, so the block benchmark runs through it.
#include "target/target.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "common/error.hpp"
#include "emu/controller.hpp"
#include "fil/helpers.hpp"
#include "homi/daemon.hpp"
#include "perf/runner.hpp"
#include "target/farm.hpp"

using namespace aisio;
namespace {

using filtest::TempDir;

// The aisio::Error a call throws, if any: its code and the message a user reads.
struct Thrown {
  bool threw = false;
  Errc code{};
  std::string what;
};
Thrown thrown(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return {true, e.code(), e.what()};
  }
  return {};
}

// Writes a pattern through one queue pair of `t`, reads it back through another.
void round_trip(target::Target& t, uint32_t nsid, uint64_t slba) {
  const auto ns = t.ns(nsid);
  auto w = t.dma()->alloc(64 << 10, t.page_size());
  auto r = t.dma()->alloc(64 << 10, t.page_size());
  for (size_t i = 0; i < w.size(); ++i) w.data()[i] = uint8_t(i * 131 + slba);
  const uint32_t nlb = uint32_t(w.size() / ns.lba_size);
  {
    auto qp = t.create_queue_pair({.depth = 8}, nsid);
    auto c = qp->write(nsid, slba, nlb, w);
    ASSERT_TRUE(c.ok()) << c.describe();
  }
  auto qp = t.create_queue_pair({.depth = 8}, nsid);
  std::memset(r.data(), 0, r.size());
  auto c = qp->read(nsid, slba, nlb, r);
  ASSERT_TRUE(c.ok()) << c.describe();
  EXPECT_EQ(std::memcmp(w.data(), r.data(), w.size()), 0);
}

TEST(Target, EmbeddedOpensAndDoesIo) {
  auto t = target::open("embedded:32M");
  EXPECT_EQ(t->describe(), "embedded");
  EXPECT_EQ(t->ns(1).bytes(), 32u << 20);
  ASSERT_NE(t->controller(), nullptr);
  ASSERT_NE(t->soft_controller(), nullptr);
  EXPECT_FALSE(t->homid());
  EXPECT_NE(t->model().find("aisio"), std::string::npos) << t->model();
  round_trip(*t, 1, 100);
  // The driver's I/O went to this process's software controller.
  EXPECT_GE(t->soft_controller()->stats().write_commands, 1u);
}

TEST(Target, ImageServesTheFileByteForByte) {
  TempDir d;
  std::string img = d.path + "/ns.img";
  {
    std::ofstream f(img, std::ios::binary);
    std::string block(4096, '\0');
    for (int i = 0; i < 256; ++i) {
      std::memset(block.data(), 'a' + i % 26, block.size());
      f.write(block.data(), std::streamsize(block.size()));
    }
  }
  for (uint32_t lba : {512u, 4096u}) {
    auto t = target::open("image:" + img, {.image_lba_size = lba});
    EXPECT_EQ(t->describe(), "image:" + img);
    EXPECT_EQ(t->ns(1).lba_size, lba);
    EXPECT_EQ(t->ns(1).bytes(), 1u << 20);
    auto buf = t->dma()->alloc(4096, t->page_size());
    auto qp = t->create_queue_pair({.depth = 4}, 1);
    auto c = qp->read(1, 7 * 4096 / lba, 4096 / lba, buf);  // file block 7 is all 'h'
    ASSERT_TRUE(c.ok()) << c.describe();
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), 4096), std::string(4096, 'h'));
  }
  auto e = thrown([&] { target::open("image:" + d.path + "/missing.img"); });
  EXPECT_TRUE(e.threw);
  EXPECT_NE(e.what.find("missing.img"), std::string::npos) << e.what;
  e = thrown([&] { target::open("image:" + d.path); });
  EXPECT_EQ(e.code, Errc::invalid_argument);
  EXPECT_NE(e.what.find("not a regular file"), std::string::npos) << e.what;
}

TEST(Target, FarmControllersAreIndependent) {
  target::EmuFarmOptions o;
  o.devices = 3;
  o.ns_bytes = 16 << 20;
  o.backing = "ram";
  auto farm = target::open_farm(o);
  ASSERT_EQ(farm.size(), 3u);
  for (size_t i = 0; i < farm.size(); ++i) {
    EXPECT_EQ(farm[i]->describe(), "emu-farm:" + std::to_string(i));
    round_trip(*farm[i], 1, 8 * i);
  }
  o.backing = "file:/tmp/x";
  auto e = thrown([&] { target::open_farm(o); });
  EXPECT_EQ(e.code, Errc::invalid_argument);
  EXPECT_NE(e.what.find("--emu-backing must be null or ram"), std::string::npos) << e.what;
}

TEST(Target, BadHandlesAreClearErrors) {
  auto e = thrown([] { target::open("nvme0"); });
  EXPECT_EQ(e.code, Errc::invalid_argument);
  EXPECT_NE(e.what.find("unknown controller handle 'nvme0'"), std::string::npos) << e.what;
  EXPECT_NE(e.what.find("homid[:SOCKET][/CONTROLLER]"), std::string::npos) << e.what;
  // Nothing listens on port 9 (discard) here: the connect is refused, and said so.
  e = thrown([] { target::open("tcp://127.0.0.1:9/nqn.2014-08.org.example:x"); });
  EXPECT_TRUE(e.threw);
  EXPECT_NE(e.what.find("cannot connect to 127.0.0.1:9"), std::string::npos) << e.what;
  e = thrown([] { target::open("homid:/nonexistent/homid.sock"); });
  EXPECT_TRUE(e.threw);
  EXPECT_NE(e.what.find("/nonexistent/homid.sock"), std::string::npos) << e.what;
  e = thrown([] { target::open("homidx"); });
  EXPECT_EQ(e.code, Errc::invalid_argument);
  e = thrown([] { target::open("embedded:lots"); });
  EXPECT_EQ(e.code, Errc::invalid_argument);
}

// A homid with one software controller, serving this test process.
struct Homid {
  Homid() {
    homi::DaemonConfig cfg;
    cfg.socket = dir.path + "/homid.sock";
    cfg.socket_mode = 0600;
    homi::ControllerConfig c;
    c.name = "soft0";
    c.kind = homi::ControllerConfig::Kind::soft;
    c.soft.max_io_queues = 8;
    c.io_queues = 8;
    c.soft.namespaces = {emu::NamespaceConfig{64ull << 20, 512, emu::Backing::ram, ""}};
    c.backings = {homi::NamespaceBacking{1, "", ""}};
    cfg.controllers.push_back(c);
    cfg.policy.log_level = "warn";
    cfg.policy.limits.max_queues_per_client = 8;
    cfg.policy.limits.max_queues_total = 16;
    cfg.policy.limits.max_dma_bytes_per_client = 256ull << 20;
    homi::AccessRule r;
    r.name = "tests";
    r.any = true;
    cfg.policy.rules.push_back(r);
    socket = cfg.socket;
    daemon = std::make_unique<homi::Daemon>(cfg);
    daemon->start();
  }
  TempDir dir;
  std::string socket;
  std::unique_ptr<homi::Daemon> daemon;
};

TEST(Target, HomidHandleForms) {
  Homid h;
  for (const std::string handle : {"homid:" + h.socket, "homid:" + h.socket + "/soft0", "homid:" + h.socket + "/0"}) {
    auto t = target::open(handle);
    EXPECT_NE(t->describe().find("controller 'soft0'"), std::string::npos) << handle << ": " << t->describe();
    EXPECT_EQ(t->controller(), nullptr);  // homid keeps the admin queue
    ASSERT_TRUE(t->homid());
    EXPECT_EQ(t->homid().controller, 0u);
    EXPECT_EQ(t->ns(1).bytes(), 64u << 20);
    round_trip(*t, 1, 4096);
  }
  auto e = thrown([&] { target::open("homid:" + h.socket + "/nosuch"); });
  EXPECT_TRUE(e.threw);
  EXPECT_NE(e.what.find("nosuch"), std::string::npos) << e.what;
  // $HOMID_SOCKET is the default socket.
  ::setenv("HOMID_SOCKET", h.socket.c_str(), 1);
  auto t = target::open("homid/soft0");
  ::unsetenv("HOMID_SOCKET");
  EXPECT_NE(t->describe().find(h.socket), std::string::npos) << t->describe();
  e = thrown([&] { t->ns(2); });
  EXPECT_EQ(e.code, Errc::invalid_argument);
  EXPECT_NE(e.what.find("namespace 2 is not active"), std::string::npos) << e.what;
}

TEST(Target, PerfRunsThroughHomid) {
  Homid h;
  perf::PerfOptions o;
  o.progress = false;
  o.pin = false;
  o.command_line = "target_test";
  o.targets = {"homid:" + h.socket + "/soft0"};
  o.ios = 5000;
  o.qd = 16;
  o.threads = 2;
  perf::RunResult r = perf::run(o);
  EXPECT_EQ(r.errors(), 0u) << r.total().first_error;
  EXPECT_EQ(r.total().ios(), 10000u);  // --ios per thread
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_NE(r.devices[0].model.find("soft0"), std::string::npos) << r.devices[0].model;
  // Every queue pair the threads were granted went back to the daemon.
  EXPECT_EQ(h.daemon->snapshot().queues, 0u);
}

TEST(Target, PerfCommandLineThroughHomid) {
  Homid h;
  std::string cmd = std::string(AISIO_BIN) + " perf run homid:" + h.socket + " --ios 2000 --qd 8 --json 2>&1";
  std::array<char, 4096> buf{};
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int rc = ::pclose(p);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"total_ios\": 2000"), std::string::npos) << out;
  EXPECT_NE(out.find("soft0"), std::string::npos) << out;
}

}  // namespace
