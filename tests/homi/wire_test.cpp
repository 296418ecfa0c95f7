// The homid wire codec and the TOML configuration: round trips, and every way a
// message can be malformed.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "common/error.hpp"
#include "common/expect_error.hpp"
#include "homi/config.hpp"
#include "homi/wire.hpp"

using aisio::test::expect_error;

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
  w(uint64_t(1), uint32_t(63));  // region, page_shift
  w(0xFFFFFFF0u);                // bus entries
  auto& b = w.bytes();
  wire::Header h;
  h.type = uint16_t(wire::Type::register_dma_ok);
  h.length = uint32_t(b.size() - wire::HEADER_SIZE);
  wire::Writer hw;
  hw(h.magic, h.version, h.type, h.length, h.seq);
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
  expect_error([&] { wire::encode(1, x); }, Errc::protocol, "homi protocol: resolve_extents_ok message of ");
  wire::Hello h;
  h.client.assign(wire::MAX_STRING + 1, 'x');
  expect_error([&] { wire::encode(1, h); }, Errc::protocol, "homi protocol: string of 4097 bytes (limit 4096)");
}


// ---- Golden bytes -----------------------------------------------------------------
// One instance of every message, its fields set to distinct non-default values (the
// second controller aside: it covers an empty array), and the exact packet the codec produced for it (captured before put/get were folded
// into one field list). A change to the wire format fails here, not in a peer.

namespace {

std::vector<wire::Body> golden_bodies() {
  wire::HelloOk ho;
  ho.version = 1;
  ho.instance = 0x1122334455667788;
  ho.uid = 1000;
  ho.gid = 100;
  ho.pid = 4242;
  ho.client_id = 7;
  ho.max_message = 65536;
  ho.max_queues = 4;
  ho.max_dma_bytes = 1ull << 30;
  ho.daemon = "homid 0.1.0";

  wire::ControllerInfo ci;
  ci.index = 2;
  ci.name = "soft0";
  ci.address = "emu:soft0";
  ci.model = "M";
  ci.serial = "S1";
  ci.kind = uint8_t(wire::Kind::soft);
  ci.dma = uint8_t(wire::DmaKind::memfd);
  ci.dstrd = 3;
  ci.flags = wire::kCtrlDoorbellsIsolated | wire::kCtrlSgl;
  ci.page_size = 4096;
  ci.max_transfer = 1 << 20;
  ci.max_queue_depth = 1024;
  ci.queue_limit = 8;
  ci.queues_in_use = 1;
  ci.namespaces = {{1, 512, 0x10000, 1}, {2, 4096, 0x20000, 0}};
  wire::ControllerInfo bare;  // no namespaces: an empty array
  bare.index = 5;
  bare.name = "ssd0";
  wire::ListControllersOk lo;
  lo.controllers = {ci, bare};

  wire::ResolveExtentsOk xo;
  xo.ctrl = 1;
  xo.nsid = 2;
  xo.lba_size = 512;
  xo.file_size = 0x30000;
  xo.device_offset = 0x100000;
  xo.total = 2;
  xo.path = "/data/a";
  xo.extents = {{0, 0x4000, 0x2000, 0}, {0x2000, 0x8000, 0x1000, 1}};

  wire::StatsOk so;
  so.instance = 0x0102030405060708;
  so.uptime_ms = 12345;
  so.queues_total = 3;
  so.max_queues_total = 64;
  so.clients_total = 9;
  so.reclaimed_queues = 2;
  so.clients = {wire::ClientStat{11, 12, 13, 14, "ml", "rule", 15, 16, 17, 18, 19, 20}};
  so.queues = {wire::QueueStat{11, 1, 3, 64, 2, 1, 500}};
  so.controllers = {wire::ControllerStat{1, "soft0", 2, 8, 1, 21, 22, 23, 24, 25}};

  wire::FunctionInfo fi{"pf0", "0000:01:00.0", "0000:01:00.1", 1, 2, 1, uint8_t(wire::Kind::pci_uio), 2, 1, 7, 3};
  wire::FunctionInfo fi2;  // empty strings, all zero
  fi2.vfn = 2;

  return {
      wire::Hello{0x0102, 0x0304, 0x05060708, "cli"},
      ho,
      wire::ListControllers{},
      lo,
      wire::Identify{3, 0, 1},
      wire::IdentifyOk{{0xde, 0xad, 0xbe, 0xef}},
      wire::AllocQueue{1, 256, 2, wire::kAllocExternalMemory, 0x1000, 0x2000},
      wire::AllocQueueOk{7, 256, wire::kGrantIsolated, 0x3000, 0x1000, 0x8, 0xc},
      wire::ReleaseQueue{1, 7},
      wire::ReleaseQueueOk{},
      wire::RegisterDma{2, 4 << 20},
      wire::RegisterDmaOk{9, 21, {0x200000, 0x400000}},
      wire::UnregisterDma{2, 9},
      wire::UnregisterDmaOk{},
      wire::ResolveExtents{wire::kResolveSync, 10, 64},
      xo,
      wire::Stats{wire::kStatsAll},
      so,
      wire::ListFunctions{},
      wire::ListFunctionsOk{{fi, fi2}},
      wire::GrantFunction{"pf0", 2},
      wire::GrantFunctionOk{fi, 0x10000000000, 0x4000},
      wire::ReleaseFunction{"pf0", 1},
      wire::ReleaseFunctionOk{},
      wire::ErrorReply{-2, "no"},
  };
}

std::vector<uint8_t> unhex(std::string_view s) {
  std::vector<uint8_t> b;
  for (size_t i = 0; i + 1 < s.size(); i += 2) b.push_back(uint8_t(std::stoi(std::string(s.substr(i, 2)), nullptr, 16)));
  return b;
}

std::string hex(std::span<const uint8_t> b) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (uint8_t c : b) {
    s += digits[c >> 4];
    s += digits[c & 15];
  }
  return s;
}

// The packet for golden_bodies()[i], as hex, in Type order.
const char* const kGolden[] = {
    "484f4d49010001000d0000000d0c0b0a02010403080706050300636c69",
    "484f4d49010002003b0000000d0c0b0a01008877665544332211e8030000640000009210000007000000000000000000"
    "01000400000000000040000000000b00686f6d696420302e312e30",
    "484f4d4901000300000000000d0c0b0a",
    "484f4d4901000400830000000d0c0b0a02000000020000000500736f6674300900656d753a736f66743001004d020053"
    "310101030300100000000010000004000008000100020000000100000000020000000001000000000001020000000010"
    "000000000200000000000005000000040073736430000000000000000000000010000000000000000000000000000000"
    "000000",
    "484f4d4901000500090000000d0c0b0a030000000001000000",
    "484f4d4901000600080000000d0c0b0a04000000deadbeef",
    "484f4d4901000700200000000d0c0b0a0100000000010000020000000100000000100000000000000020000000000000",
    "484f4d4901000800220000000d0c0b0a0700000100000100000000300000000000000010000000000000080000000c00"
    "0000",
    "484f4d4901000900060000000d0c0b0a010000000700",
    "484f4d4901000a00000000000d0c0b0a",
    "484f4d4901000b000c0000000d0c0b0a020000000000400000000000",
    "484f4d4901000c00200000000d0c0b0a0900000000000000150000000200000000002000000000000000400000000000",
    "484f4d4901000d000c0000000d0c0b0a020000000900000000000000",
    "484f4d4901000e00000000000d0c0b0a",
    "484f4d4901000f00100000000d0c0b0a010000000a0000000000000040000000",
    "484f4d4901001000690000000d0c0b0a0100000002000000000200000000030000000000000010000000000002000000"
    "0000000007002f646174612f610200000000000000000000000040000000000000002000000000000000000000002000"
    "00000000000080000000000000001000000000000001000000",
    "484f4d4901001100040000000d0c0b0a01000000",
    "484f4d4901001200d40000000d0c0b0a0807060504030201393000000000000003000000400000000900000000000000"
    "0200000000000000010000000b000000000000000c0000000d0000000e00000002006d6c040072756c650f0000001000"
    "00001100000000000000120000000000000013000000000000001400000000000000010000000b000000000000000100"
    "00000300400000000200000001000000f40100000000000001000000010000000500736f667430020008000115000000"
    "000000001600000000000000170000000000000018000000000000001900000000000000",
    "484f4d4901002800000000000d0c0b0a",
    "484f4d49010029005f0000000d0c0b0a0200000003007066300c00303030303a30313a30302e300c00303030303a30313a3030"
    "2e3101000200010202000100070000000000000003000000000000000000000000000200000000000000000000000000"
    "000000000000000000000000",
    "484f4d4901002a00070000000d0c0b0a03007066300200",
    "484f4d4901002b004b0000000d0c0b0a03007066300c00303030303a30313a30302e300c00303030303a30313a3030"
    "2e31010002000102020001000700000000000000030000000000000000000000000100000040000000000000",
    "484f4d4901002c00070000000d0c0b0a03007066300100",
    "484f4d4901002d00000000000d0c0b0a",
    "484f4d490100ff00080000000d0c0b0afeffffff02006e6f",
};

}  // namespace

TEST(HomiWire, EncodesGoldenBytes) {
  auto bodies = golden_bodies();
  ASSERT_EQ(bodies.size(), std::size(kGolden));
  for (size_t i = 0; i < bodies.size(); ++i) {
    auto bytes = wire::encode(0x0A0B0C0D, bodies[i]);
    EXPECT_EQ(hex(bytes), kGolden[i]) << wire::type_name(wire::type_of(bodies[i]));
  }
}

TEST(HomiWire, DecodesGoldenBytes) {
  auto bodies = golden_bodies();
  for (size_t i = 0; i < bodies.size(); ++i) {
    auto bytes = unhex(kGolden[i]);
    wire::Type t = wire::type_of(bodies[i]);
    auto m = wire::decode(bytes, wire::fds_of(t));
    EXPECT_EQ(m.header.seq, 0x0A0B0C0Du);
    ASSERT_EQ(wire::type_of(m.body), t);
    // The fields are non-default, so one dropped or swapped on decode changes the bytes.
    EXPECT_EQ(hex(wire::encode(0x0A0B0C0D, m.body)), kGolden[i]) << wire::type_name(t);
  }
}

// The GPU index of a queue (#17): on the wire only when its flag is set, so the bytes
// of a grant without it stay those of the golden packets above.
TEST(HomiWire, GpuIndexTravelsOnlyWithItsFlag) {
  wire::AllocQueue plain{1, 256, 2, wire::kAllocExternalMemory, 0x1000, 0x2000};
  wire::AllocQueue gpu = plain;
  gpu.flags |= wire::kAllocGpu;
  gpu.gpu = 5;
  auto a = wire::encode(1, plain), b = wire::encode(1, gpu);
  EXPECT_EQ(b.size(), a.size() + 4);
  auto m = wire::decode(b, wire::fds_of(wire::Type::alloc_queue));
  const auto& back = std::get<wire::AllocQueue>(m.body);
  EXPECT_EQ(back.gpu, 5u);
  EXPECT_EQ(back.flags, plain.flags | wire::kAllocGpu);
  // The flag without the index behind it is refused (a truncated request).
  auto cut = a;
  cut[16 + 12] |= uint8_t(wire::kAllocGpu);  // flags: header (16) + ctrl, depth, nsid
  EXPECT_THROW(wire::decode(cut, wire::fds_of(wire::Type::alloc_queue)), Error);

  wire::AllocQueueOk ok{7, 256, wire::kGrantIsolated | wire::kGrantGpu, 0x3000, 0x1000, 0x8, 0xc, 1};
  auto ok2 = std::get<wire::AllocQueueOk>(wire::decode(wire::encode(2, ok), wire::fds_of(wire::Type::alloc_queue_ok)).body);
  EXPECT_EQ(ok2.gpu, 1u);
  EXPECT_EQ(ok2.flags, ok.flags);

  wire::StatsOk so;
  so.queues = {wire::QueueStat{11, 1, 3, 64, 2, wire::kAllocGpu, 500, 2}, wire::QueueStat{11, 1, 4, 64, 2, 0, 9, 0}};
  auto so2 = std::get<wire::StatsOk>(wire::decode(wire::encode(3, so), wire::fds_of(wire::Type::stats_ok)).body);
  ASSERT_EQ(so2.queues.size(), 2u);
  EXPECT_EQ(so2.queues[0].gpu, 2u);
  EXPECT_EQ(so2.queues[0].qid, 3u);
  EXPECT_EQ(so2.queues[1].qid, 4u);
  EXPECT_EQ(so2.queues[1].age_ms, 9u);
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
  // [daemon] socket_mode / socket_group: each refusal says why.
  auto daemon = [&](const std::string& line) {
    return err(("[daemon]\n" + line + "\n[[controller]]\nname='a'\ntype='soft'\n").c_str());
  };
  EXPECT_EQ(daemon("socket_mode='0640'"), "accepted");
  EXPECT_NE(daemon("socket_mode='0x9'").find("octal string"), std::string::npos);
  EXPECT_NE(daemon("socket_mode=''").find("octal string"), std::string::npos);
  EXPECT_NE(daemon("socket_mode='77777777777777777'").find("octal string"), std::string::npos);
  EXPECT_NE(daemon("socket_mode='1777'").find("at most 0777"), std::string::npos);
  EXPECT_EQ(daemon("socket_group='root'"), "accepted");
  // The messages of before the simplification pass (db756bf): they name the setting.
  EXPECT_NE(daemon("socket_group='no-such-group-xyz'").find("socket_group 'no-such-group-xyz' not found in /etc/group"),
            std::string::npos);
  EXPECT_NE(daemon("socket_group=-1").find("id out of range"), std::string::npos);
  EXPECT_NE(daemon("socket_group=true").find("socket_group must be a group name or gid"), std::string::npos);
  auto rule = [&](const std::string& line) {
    return err(("[[controller]]\nname='a'\ntype='soft'\n[[allow]]\n" + line + "\n").c_str());
  };
  EXPECT_NE(rule("uids=[true]").find("'uids' must hold numbers or names"), std::string::npos);
  EXPECT_NE(rule("gids=[1.5]").find("'gids' must hold numbers or names"), std::string::npos);
  EXPECT_NE(rule("gids=['no-such-group-xyz']").find("group 'no-such-group-xyz' not found in /etc/group"),
            std::string::npos);
  EXPECT_NE(rule("uids=['no-such-user-xyz']").find("user 'no-such-user-xyz' not found in /etc/passwd"),
            std::string::npos);
}
