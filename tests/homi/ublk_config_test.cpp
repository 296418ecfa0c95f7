// homid's ublk configuration and the checks it makes before creating anything.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "common/error.hpp"
#include "homi/config.hpp"
#include "homi/daemon.hpp"
#include "homi/log.hpp"
#include "homi/ublk/exports.hpp"
#include "homi/ublk/owner.hpp"
#include "homi/wire.hpp"
#include "common/expect_error.hpp"

using aisio::test::expect_error;

using namespace aisio;
using namespace aisio::homi;

namespace {

std::string soft_config(const std::string& ns_extra, int max_io_queues = 4, const std::string& socket = "/tmp/x.sock") {
  return "[daemon]\nsocket = \"" + socket + "\"\nlog_level = \"error\"\n[[controller]]\nname = \"soft0\"\ntype = \"soft\"\n" +
         "max_io_queues = " + std::to_string(max_io_queues) + "\n[[controller.namespace]]\nsize = \"64M\"\n" + ns_extra;
}

std::string error_of(const std::string& toml) {
  try {
    parse_config(toml, "t.toml");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool kernel_has_ublk() {
  struct stat st {};
  return stat(ublk::CONTROL_PATH, &st) == 0;
}

}  // namespace

TEST(UblkConfig, Keys) {
  DaemonConfig c = parse_config(soft_config("ublk = true\nublk_id = 3\nublk_queues = 2\nublk_depth = 32\n"), "t.toml");
  const auto& u = c.controllers.at(0).backings.at(0).ublk;
  EXPECT_TRUE(u.enabled);
  EXPECT_EQ(u.dev_id, 3);
  EXPECT_EQ(u.queues, 2);
  EXPECT_EQ(u.depth, 32);
  DaemonConfig d = parse_config(soft_config(""), "t.toml");
  EXPECT_FALSE(d.controllers.at(0).backings.at(0).ublk.enabled);
  EXPECT_EQ(d.controllers.at(0).backings.at(0).ublk.dev_id, -1);
}

TEST(UblkConfig, QueueBudgetMustLeaveQueues) {
  std::string e = error_of(soft_config("ublk = true\nublk_queues = 4\n", 2));
  EXPECT_NE(e.find("need 4 I/O queue pair(s) for the kernel path"), std::string::npos) << e;
  EXPECT_NE(e.find("leaves no queue for the kernel path"), std::string::npos) << e;
  e = error_of(soft_config("ublk = true\nublk_queues = 2\n", 2));
  EXPECT_NE(e.find("leaves none for clients"), std::string::npos) << e;
  EXPECT_NE(error_of(soft_config("ublk = true\nublk_depth = 5000\n")).find("ublk_depth"), std::string::npos);
  EXPECT_NE(error_of(soft_config("ublk_queue = 1\n")).find("ublk_queue"), std::string::npos);
  EXPECT_EQ(error_of(soft_config("ublk = true\nublk_queues = 1\n", 2)), "");
}

TEST(UblkConfig, MissingDriverIsAClearErrorAndLeavesNothing) {
  if (kernel_has_ublk()) GTEST_SKIP() << "this kernel has ublk_drv loaded";
  try {
    ublk::preflight(parse_config(soft_config("ublk = true\n"), "t.toml").controllers);
    FAIL() << "preflight passed without /dev/ublk-control";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::not_supported);
    EXPECT_NE(std::string(e.what()).find("load the ublk_drv module"), std::string::npos) << e.what();
  }
  EXPECT_EQ(ublk::preflight(parse_config(soft_config(""), "t.toml").controllers), "");  // nothing exported
  // The daemon refuses to start and leaves no socket behind.
  char dir[] = "/tmp/ublk-cfg-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir));
  std::string sock = std::string(dir) + "/homid.sock";
  Daemon d(parse_config(soft_config("ublk = true\n", 4, sock), "t.toml"));
  try {
    d.start();
    FAIL() << "homid started a ublk export without ublk_drv";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("load the ublk_drv module"), std::string::npos) << e.what();
  }
  struct stat st {};
  EXPECT_NE(stat(sock.c_str(), &st), 0) << "socket left behind";
  d.stop();
  rmdir(dir);
}

TEST(UblkConfig, StatusTravelsInStatsOk) {
  wire::StatsOk s;
  wire::UblkStat u;
  u.ctrl = 1;
  u.dev_id = 0;
  u.nsid = 1;
  u.path = "/dev/ublkb0";
  u.qids = "7";
  u.queues = 1;
  u.depth = 32;
  u.max_io_bytes = 256 << 10;
  u.recovered = 1;
  u.reads = 5;
  u.bytes_written = 12345;
  s.ublk.push_back(u);
  auto bytes = wire::encode(9, s);
  auto back = std::get<wire::StatsOk>(wire::decode(bytes).body);
  ASSERT_EQ(back.ublk.size(), 1u);
  EXPECT_EQ(back.ublk[0].path, "/dev/ublkb0");
  EXPECT_EQ(back.ublk[0].qids, "7");
  EXPECT_EQ(back.ublk[0].depth, 32);
  EXPECT_EQ(back.ublk[0].recovered, 1);
  EXPECT_EQ(back.ublk[0].reads, 5u);
  EXPECT_EQ(back.ublk[0].bytes_written, 12345u);
  bytes.pop_back();  // a truncated record is refused, not half-read
  expect_error([&] { wire::decode(bytes); }, Errc::protocol, "length field says 157 payload bytes, the packet holds 156");
}

TEST(UblkConfig, UblkDiskNames) {
  EXPECT_TRUE(ublk::is_ublk_disk("ublkb0"));
  EXPECT_TRUE(ublk::is_ublk_disk("ublkb12"));
  EXPECT_FALSE(ublk::is_ublk_disk("ublkb"));
  EXPECT_FALSE(ublk::is_ublk_disk("ublkc0"));
  EXPECT_FALSE(ublk::is_ublk_disk("ublkb0p1"));  // a partition's disk is ublkb0, not this
  EXPECT_FALSE(ublk::is_ublk_disk("nvme0n1"));
  EXPECT_FALSE(ublk::exported_by("nvme0n1", "/nonexistent.sock"));  // not asked at all
}
