// The homid wire codec and the TOML configuration: round trips, and every way a
// message can be malformed.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "common/error.hpp"
#include "homi/config.hpp"
#include "homi/wire.hpp"

using namespace aisio;
using namespace aisio::homi;

namespace {

wire::Message roundtrip(const wire::Body& b, unsigned fds = 0) {
  auto bytes = wire::encode(77, b);
  return wire::decode(bytes, fds);
}

std::string refusal(std::span<const uint8_t> bytes, unsigned fds = 0) {
  try {
    wire::decode(bytes, fds);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::protocol);
    return e.what();
  }
  return "";
}

}  // namespace

TEST(HomiWire, RoundTripsEveryMessage) {
  wire::Hello h;
  h.client = "test";
  h.pid = 42;
  auto m = roundtrip(h);
  EXPECT_EQ(m.header.seq, 77u);
  EXPECT_EQ(std::get<wire::Hello>(m.body).client, "test");
  EXPECT_EQ(std::get<wire::Hello>(m.body).pid, 42u);

  wire::ListControllersOk l;
  wire::ControllerInfo ci;
  ci.name = "soft0";
  ci.namespaces = {{1, 512, 1000, 1}, {2, 4096, 5, 0}};
  ci.queue_limit = 9;
  l.controllers = {ci, ci};
  auto lm = std::get<wire::ListControllersOk>(roundtrip(l).body);
  ASSERT_EQ(lm.controllers.size(), 2u);
  EXPECT_EQ(lm.controllers[1].namespaces[1].lba_size, 4096u);
  EXPECT_EQ(lm.controllers[1].queue_limit, 9u);

  wire::AllocQueue aq{3, 128, 1, 0, 0x10000, 0x20000};
  auto a = std::get<wire::AllocQueue>(roundtrip(aq).body);
  EXPECT_EQ(a.depth, 128u);
  EXPECT_EQ(a.cq_bus, 0x20000u);

  wire::AllocQueueOk ok{5, 128, 1, 0, 8192, 0, 4096};
  EXPECT_EQ(std::get<wire::AllocQueueOk>(roundtrip(ok, 1).body).cq_doorbell, 4096u);

  wire::RegisterDmaOk r{9, 21, {1, 2, 3}};
  EXPECT_EQ(std::get<wire::RegisterDmaOk>(roundtrip(r).body).bus, (std::vector<uint64_t>{1, 2, 3}));

  wire::ResolveExtentsOk x;
  x.path = "/data/a";
  x.extents = {{0, 4096, 8192, 0}, {8192, 0, 4096, 1}};
  x.total = 2;
  auto xm = std::get<wire::ResolveExtentsOk>(roundtrip(x).body);
  EXPECT_EQ(xm.extents[0].physical, 4096u);
  EXPECT_EQ(xm.path, "/data/a");

  wire::StatsOk s;
  s.clients = {wire::ClientStat{1, 2, 3, 4, "n", "r", 5, 6, 7, 8, 9, 10}};
  s.queues = {wire::QueueStat{1, 0, 3, 64, 1, 0, 5}};
  s.controllers = {wire::ControllerStat{0, "soft0", 1, 8, 1, 2, 3, 4, 5, 6}};
  auto sm = std::get<wire::StatsOk>(roundtrip(s).body);
  EXPECT_EQ(sm.clients[0].name, "n");
  EXPECT_EQ(sm.queues[0].depth, 64u);
  EXPECT_EQ(sm.controllers[0].bytes_written, 5u);
  EXPECT_EQ(sm.controllers[0].errors, 6u);

  wire::ErrorReply e{int32_t(Errc::no_memory), "queue budget exhausted"};
  EXPECT_EQ(std::get<wire::ErrorReply>(roundtrip(e).body).text, "queue budget exhausted");
}

TEST(HomiWire, RejectsMalformedMessages) {
  auto good = wire::encode(1, wire::Identify{0, 1, 0});
  // Truncated anywhere: header or payload.
  for (size_t n = 0; n < good.size(); ++n) EXPECT_NE(refusal(std::span(good).first(n)), "") << n;
  // Trailing bytes.
  auto longer = good;
  longer.push_back(0);
  EXPECT_NE(refusal(longer), "");
  // Bad magic, version, unknown type.
  auto bad = good;
  bad[0] ^= 0xFF;
  EXPECT_NE(refusal(bad).find("magic"), std::string::npos);
  bad = good;
  bad[4] = 9;
  EXPECT_NE(refusal(bad).find("version"), std::string::npos);
  bad = good;
  bad[6] = 200;
  EXPECT_NE(refusal(bad).find("unknown message type"), std::string::npos);
  // Length field disagreeing with the packet.
  bad = good;
  bad[8] += 1;
  EXPECT_NE(refusal(bad).find("length field"), std::string::npos);
  // Descriptors: missing where one is required, present where none is.
  auto rx = wire::encode(2, wire::ResolveExtents{});
  EXPECT_NE(refusal(rx, 0).find("descriptor"), std::string::npos);
  EXPECT_NE(refusal(good, 1).find("descriptor"), std::string::npos);
  // A count that cannot fit in what is left (no allocation of 4 G elements).
  wire::Writer w;
  w.bytes().resize(wire::HEADER_SIZE);
  w.u64(1);
  w.u32(63);
  w.u32(0xFFFFFFF0u);  // bus entries
  auto& b = w.bytes();
  wire::Header h;
  h.type = uint16_t(wire::Type::register_dma_ok);
  h.length = uint32_t(b.size() - wire::HEADER_SIZE);
  wire::Writer hw;
  hw.u32(h.magic);
  hw.u16(h.version);
  hw.u16(h.type);
  hw.u32(h.length);
  hw.u32(h.seq);
  std::memcpy(b.data(), hw.bytes().data(), wire::HEADER_SIZE);
  EXPECT_NE(refusal(b).find("array"), std::string::npos);
  // Oversized.
  std::vector<uint8_t> huge(wire::MAX_MESSAGE + 1, 0);
  std::memcpy(huge.data(), good.data(), wire::HEADER_SIZE);
  EXPECT_NE(refusal(huge).find("exceeds"), std::string::npos);
}

TEST(HomiWire, EncodeRefusesOversizedMessages) {
  wire::ResolveExtentsOk x;
  x.extents.resize(wire::MAX_MESSAGE / 28 + 10);
  EXPECT_THROW(wire::encode(1, x), Error);
  wire::Hello h;
  h.client.assign(wire::MAX_STRING + 1, 'x');
  EXPECT_THROW(wire::encode(1, h), Error);
}

TEST(HomiConfig, ParsesAFullConfiguration) {
  auto cfg = parse_config(R"(
[daemon]
socket = "/tmp/x/homid.sock"
socket_mode = "0600"
log_level = "debug"

[limits]
max_queues_total = 12
max_queues_per_client = 3
max_dma_bytes_per_client = "256M"

[[controller]]
name = "soft0"
type = "soft"
max_io_queues = 8
  [[controller.namespace]]
  size = "64M"
  lba_size = 4096
  [[controller.namespace]]
  size = "16M"
  backing = "null"
  block_device = "/dev/loop7"

[[controller]]
name = "ssd0"
type = "pci"
address = "0000:01:00.0"
  [[controller.namespace]]
  nsid = 1
  block_device = "/dev/nvme0n1"

[[allow]]
name = "ml"
uids = [0, 1000]
gids = ["root"]
controllers = ["soft0"]
dataset_roots = ["/data/", "/scratch"]
max_queues = 2
admin = true
)",
                          "t.toml");
  EXPECT_EQ(cfg.socket, "/tmp/x/homid.sock");
  EXPECT_EQ(cfg.socket_mode, 0600u);
  EXPECT_EQ(cfg.policy.limits.max_queues_total, 12u);
  EXPECT_EQ(cfg.policy.limits.max_dma_bytes_per_client, 256ull << 20);
  ASSERT_EQ(cfg.controllers.size(), 2u);
  const auto& s = cfg.controllers[0];
  EXPECT_EQ(s.soft.dstrd, 10);
  ASSERT_EQ(s.soft.namespaces.size(), 2u);
  EXPECT_EQ(s.soft.namespaces[0].lba_size, 4096u);
  EXPECT_EQ(s.soft.namespaces[1].backing, emu::Backing::null);
  EXPECT_EQ(s.backings[1].block_device, "/dev/loop7");
  EXPECT_EQ(cfg.controllers[1].address, "0000:01:00.0");
  ASSERT_EQ(cfg.policy.rules.size(), 1u);
  const auto& r = cfg.policy.rules[0];
  EXPECT_EQ(r.gids, std::vector<uint32_t>{0});
  EXPECT_TRUE(r.allows_path("/data/x/y"));
  EXPECT_TRUE(r.allows_path("/data"));
  EXPECT_FALSE(r.allows_path("/database"));
  EXPECT_FALSE(r.allows_path("/etc/passwd"));
  EXPECT_TRUE(r.allows_controller("soft0"));
  EXPECT_FALSE(r.allows_controller("ssd0"));
  EXPECT_EQ(cfg.policy.match(1000, 5, {}), &r);
  EXPECT_EQ(cfg.policy.match(0, 0, {}), &r);
  EXPECT_EQ(cfg.policy.match(7, 7, {0}), &r);  // supplementary group root
  EXPECT_EQ(cfg.policy.match(7, 7, {}), nullptr);
}

TEST(HomiConfig, ErrorsNameTheProblem) {
  auto err = [](const char* text) {
    try {
      parse_config(text, "bad.toml");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(err("[[controller]]\nname='a'\ntype='soft'\nmax_io_qeues=3\n").find("unknown key 'max_io_qeues'"),
            std::string::npos);
  EXPECT_NE(err("[[controller]]\nname='a'\ntype='floppy'\n").find("type must be"), std::string::npos);
  EXPECT_NE(err("[daemon]\nsocket='/x'\n").find("no [[controller]]"), std::string::npos);
  EXPECT_NE(err("[[controller]]\nname='a'\ntype='pci'\n").find("needs address"), std::string::npos);
  EXPECT_NE(err("[[controller]]\nname='a'\ntype='soft'\n[[allow]]\nname='x'\n").find("admits nobody"),
            std::string::npos);
  EXPECT_NE(err("[[controller]]\nname='a'\ntype='soft'\n[[allow]]\nany=true\ncontrollers=['b']\n").find("not configured"),
            std::string::npos);
  EXPECT_NE(err("[[controller]]\nname='a'\ntype='soft'\n[[allow]]\nuids=['no-such-user-xyz']\n").find("not found"),
            std::string::npos);
  EXPECT_NE(err("[limits]\nmax_queues_total='x'\n").find("bad.toml:2"), std::string::npos);
  EXPECT_NE(err("this is not toml").find("bad.toml:1"), std::string::npos);
}
