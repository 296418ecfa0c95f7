// tcp:// targets: target::open against the in-test NVMe/TCP peer (tests/tcp/peer.hpp)
// on a loopback listener, a benchmark through the tcp backend, and an XFS-decoder style
// byte reader.
#include <gtest/gtest.h>

#include "common/error.hpp"
#include "io/tcp_path.hpp"
#include "perf/runner.hpp"
#include "target/target.hpp"
#include "tcp/controller.hpp"
#include "tcp/peer.hpp"

namespace aisio {
namespace {

std::string url(const tcp::test::Listener& l) { return "tcp://127.0.0.1:" + std::to_string(l.port()) + "/nqn.test:peer"; }

TEST(TcpTarget, OpensAndDescribesTheController) {
  tcp::test::Listener l;
  auto t = target::open(url(l));
  ASSERT_NE(t->tcp(), nullptr);
  EXPECT_EQ(t->controller(), nullptr);
  EXPECT_EQ(t->describe(), url(l));
  EXPECT_EQ(t->model(), "aisio test peer");
  EXPECT_EQ(t->ns(1).blocks, tcp::test::Peer::kBlocks);
  EXPECT_EQ(t->ns(1).lba_size, 512u);
  EXPECT_EQ(t->max_transfer(), 128u << 10);
  try {
    t->create_queue_pair({}, 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::not_supported);
  }
}

TEST(TcpTarget, BadHandlesAreClearErrors) {
  for (const char* h : {"tcp://127.0.0.1", "tcp://:4420/nqn", "tcp://h:70000/nqn"}) {
    try {
      target::open(h);
      FAIL() << h;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::invalid_argument) << h;
      EXPECT_NE(std::string(e.what()).find("tcp://HOST[:PORT]/SUBNQN"), std::string::npos) << e.what();
    }
  }
}

TEST(TcpTarget, PerfRunsThroughTheTcpBackend) {
  tcp::test::Listener l;
  for (auto rw : {perf::RwMode::randwrite, perf::RwMode::randread}) {
    perf::PerfOptions o;
    o.progress = false;
    o.pin = false;
    o.command_line = "tcp_target_test";
    o.targets = {url(l)};
    o.rw = rw;
    o.ios = 3000;
    o.qd = 16;
    o.threads = 2;
    perf::RunResult r = perf::run(o);
    EXPECT_EQ(r.errors(), 0u) << r.total().first_error;
    EXPECT_EQ(r.total().ios(), 6000u);
    ASSERT_EQ(r.devices.size(), 1u);
    EXPECT_EQ(r.devices[0].model, "aisio test peer");
  }
}

TEST(TcpTarget, BlockReaderReadsAnyByteRange) {
  tcp::test::Listener l;
  auto t = target::open(url(l));
  io::TcpBlockReader r(backends::tcp_target_of(t), 1000);
  EXPECT_EQ(r.size(), tcp::test::Peer::kBlocks * 512 - 1000);
  std::vector<uint8_t> buf(300000);
  r.read(777, buf.data(), buf.size());  // unaligned start and end, several commands
  EXPECT_EQ(0, std::memcmp(buf.data(), l.ns().data() + 1777, buf.size()));
  EXPECT_THROW(r.read(r.size() - 10, buf.data(), 11), Error);
}

}  // namespace
}  // namespace aisio
