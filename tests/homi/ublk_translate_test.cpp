// homid's ublk request translation against the software controller: ublk descriptors
// in, NVMe commands on a queue pair, results (bytes / negative errno) out. The kernel
// side (io_uring, /dev/ublkcN) is not involved, so this runs on any host.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <random>
#include <thread>

#include "common/error.hpp"
#include "emu/controller.hpp"
#include "homi/ublk/params.hpp"
#include "homi/ublk/translate.hpp"
#include "nvme/controller.hpp"
#include "common/expect_error.hpp"

using aisio::test::expect_error;

using namespace aisio;
using namespace aisio::homi::ublk;
using namespace std::chrono_literals;

namespace {

constexpr uint32_t TAGS = 4;
constexpr size_t TAG_BYTES = 512 << 10;  // 4x the software controller's MDTS (128 KiB)

struct Rig {
  explicit Rig(uint32_t lba = 512, uint32_t depth = 8) : dev(config(lba)) {
    dev.start();
    ctrl = nvme::Controller::create(dev.bar0(), dev.dma());
    qp = ctrl->create_queue_pair({.depth = depth, .timeout = 2s});
    geo = make_geometry(ctrl->id(), ctrl->ns(1));
    tr = std::make_unique<Translator>(*qp, geo, TAGS, &Rig::done, this);
    for (auto& b : bufs) b = ctrl->dma()->alloc(TAG_BYTES, 4096);
  }
  static emu::EmuConfig config(uint32_t lba) {
    emu::EmuConfig c;
    c.mdts = 5;
    c.namespaces = {emu::NamespaceConfig{256ull << 20, lba, emu::Backing::ram, ""}};
    return c;
  }
  static void done(void* ctx, uint16_t tag, int32_t result) {
    auto* r = static_cast<Rig*>(ctx);
    EXPECT_EQ(r->results.count(tag), 0u) << "tag " << tag << " ended twice";
    r->results[tag] = result;
  }
  // Runs one request on `tag` and returns its result.
  int32_t run(uint16_t tag, uint8_t op, uint64_t sector, uint32_t sectors, uint32_t flags = 0) {
    IoDesc d{uint32_t(op) | flags, sectors, sector, uint64_t(uintptr_t(bufs[tag].data()))};
    results.erase(tag);
    tr->start(tag, d, bufs[tag]);
    auto until = std::chrono::steady_clock::now() + 5s;
    while (!results.count(tag) && std::chrono::steady_clock::now() < until) tr->poll();
    EXPECT_TRUE(results.count(tag)) << "request on tag " << tag << " never ended";
    return results.count(tag) ? results[tag] : INT32_MIN;
  }
  void fill(uint16_t tag, size_t n, uint64_t seed) {
    std::mt19937_64 g(seed);
    for (size_t i = 0; i < n; i += 8) {
      uint64_t v = g();
      std::memcpy(bufs[tag].data() + i, &v, 8);
    }
  }
  bool zero(uint16_t tag, size_t n) const {
    for (size_t i = 0; i < n; ++i)
      if (bufs[tag].data()[i]) return false;
    return true;
  }

  emu::SoftController dev;
  std::shared_ptr<nvme::Controller> ctrl;
  std::unique_ptr<nvme::QueuePair> qp;
  NamespaceGeometry geo;
  std::unique_ptr<Translator> tr;
  DmaBuffer bufs[TAGS];
  std::map<uint16_t, int32_t> results;
};

}  // namespace

TEST(UblkTranslate, WriteThenReadReturnsBytesAndData) {
  Rig r;
  r.fill(0, 64 << 10, 1);
  EXPECT_EQ(r.run(0, IO_OP_WRITE, 80, 128), 64 << 10);
  EXPECT_EQ(r.run(1, IO_OP_READ, 80, 128), 64 << 10);
  EXPECT_EQ(std::memcmp(r.bufs[0].data(), r.bufs[1].data(), 64 << 10), 0);
  EXPECT_EQ(r.tr->counters().writes.load(), 1u);
  EXPECT_EQ(r.tr->counters().reads.load(), 1u);
  EXPECT_EQ(r.tr->counters().bytes_read.load(), 64u << 10);
  EXPECT_EQ(r.tr->busy(), 0u);
}

TEST(UblkTranslate, IdentityMappingSectorIsNamespaceByte) {
  // Byte X of the ublk device is byte X of the namespace: check through the queue pair.
  Rig r(4096);
  r.fill(0, 8192, 2);
  ASSERT_EQ(r.run(0, IO_OP_WRITE, 8 * 100, 16), 8192);  // sector 800 = byte 409600 = LBA 100
  auto buf = r.ctrl->dma()->alloc(8192, 4096);
  ASSERT_TRUE(r.qp->read(1, 100, 2, buf).ok());
  EXPECT_EQ(std::memcmp(buf.data(), r.bufs[0].data(), 8192), 0);
  // Sectors that do not fall on a 4 KiB block are refused, not rounded.
  EXPECT_EQ(r.run(1, IO_OP_READ, 801, 8), -EINVAL);
}

TEST(UblkTranslate, RequestLargerThanMdtsIsSplit) {
  Rig r(512, 4);  // 3 command slots for a request of 4 MDTS-sized commands
  ASSERT_EQ(r.qp->max_transfer(), 128u << 10);
  r.fill(0, TAG_BYTES, 3);
  uint64_t before = r.tr->counters().nvme_commands;
  EXPECT_EQ(r.run(0, IO_OP_WRITE, 2048, TAG_BYTES / 512), int32_t(TAG_BYTES));
  EXPECT_EQ(r.tr->counters().nvme_commands - before, 4u);
  EXPECT_EQ(r.run(1, IO_OP_READ, 2048, TAG_BYTES / 512), int32_t(TAG_BYTES));
  EXPECT_EQ(std::memcmp(r.bufs[0].data(), r.bufs[1].data(), TAG_BYTES), 0);
  // A request bigger than the tag's buffer (more than max_sectors promised) is refused.
  EXPECT_EQ(r.run(2, IO_OP_READ, 0, TAG_BYTES / 512 + 8), -EINVAL);
}

TEST(UblkTranslate, ManyRequestsInFlightOnFewSlots) {
  Rig r(512, 4);
  for (uint16_t t = 0; t < TAGS; ++t) r.fill(t, 256 << 10, 10 + t);
  for (uint16_t t = 0; t < TAGS; ++t)
    r.tr->start(t, IoDesc{IO_OP_WRITE, 512, uint64_t(t) * 1024, 0}, r.bufs[t]);
  auto until = std::chrono::steady_clock::now() + 5s;
  while (r.results.size() < TAGS && std::chrono::steady_clock::now() < until) r.tr->poll();
  ASSERT_EQ(r.results.size(), TAGS);
  for (auto& [t, res] : r.results) EXPECT_EQ(res, 256 << 10) << "tag " << t;
  auto check = r.ctrl->dma()->alloc(256 << 10, 4096);
  for (uint16_t t = 0; t < TAGS; ++t) {
    ASSERT_TRUE(r.qp->io(nvme::nvm::READ, 1, uint64_t(t) * 1024, 512, check).ok());
    EXPECT_EQ(std::memcmp(check.data(), r.bufs[t].data(), 256 << 10), 0) << "tag " << t;
  }
}

TEST(UblkTranslate, FlushIsAnNvmeFlush) {
  Rig r;
  EXPECT_EQ(r.run(0, IO_OP_FLUSH, 0, 0), 0);
  // The Flush reaches the controller: a status injected for opcode Flush comes back.
  r.dev.faults().fail_next(1, nvme::Status::make(nvme::sct::GENERIC, nvme::sc::INTERNAL_ERROR),
                           {.opcode = nvme::nvm::FLUSH});
  EXPECT_EQ(r.run(0, IO_OP_FLUSH, 0, 0), -EIO);
  EXPECT_EQ(r.tr->counters().flushes.load(), 2u);
  EXPECT_EQ(r.tr->counters().errors.load(), 1u);
}

TEST(UblkTranslate, DiscardDeallocatesExactlyTheRange) {
  Rig r;
  r.fill(0, 64 << 10, 4);
  ASSERT_EQ(r.run(0, IO_OP_WRITE, 1000, 128), 64 << 10);
  EXPECT_EQ(r.run(1, IO_OP_DISCARD, 1032, 64), 0);  // the middle 32 KiB
  ASSERT_EQ(r.run(2, IO_OP_READ, 1000, 128), 64 << 10);
  EXPECT_EQ(std::memcmp(r.bufs[2].data(), r.bufs[0].data(), 16 << 10), 0);
  for (size_t i = 16 << 10; i < 48 << 10; ++i) ASSERT_EQ(r.bufs[2].data()[i], 0) << "byte " << i;
  EXPECT_EQ(std::memcmp(r.bufs[2].data() + (48 << 10), r.bufs[0].data() + (48 << 10), 16 << 10), 0);
  EXPECT_EQ(r.tr->counters().discards.load(), 1u);
}

TEST(UblkTranslate, WriteZeroesLargerThanOneCommand) {
  Rig r;  // 512-byte blocks: Write Zeroes takes at most 65536 blocks (32 MiB)
  const uint64_t first = 4096, blocks = 70000;
  r.fill(0, 4096, 5);
  ASSERT_EQ(r.run(0, IO_OP_WRITE, first - 4, 8), 4096);              // straddles the start
  ASSERT_EQ(r.run(0, IO_OP_WRITE, first + blocks - 4, 8), 4096);     // and the end
  uint64_t before = r.tr->counters().nvme_commands;
  EXPECT_EQ(r.run(1, IO_OP_WRITE_ZEROES, first, uint32_t(blocks)), 0);
  EXPECT_EQ(r.tr->counters().nvme_commands - before, 2u);
  ASSERT_EQ(r.run(2, IO_OP_READ, first - 4, 8), 4096);
  EXPECT_EQ(std::memcmp(r.bufs[2].data(), r.bufs[0].data(), 2048), 0);
  EXPECT_TRUE(std::all_of(r.bufs[2].data() + 2048, r.bufs[2].data() + 4096, [](uint8_t b) { return b == 0; }));
  ASSERT_EQ(r.run(2, IO_OP_READ, first + blocks - 4, 8), 4096);
  EXPECT_TRUE(std::all_of(r.bufs[2].data(), r.bufs[2].data() + 2048, [](uint8_t b) { return b == 0; }));
  EXPECT_EQ(std::memcmp(r.bufs[2].data() + 2048, r.bufs[0].data() + 2048, 2048), 0);
}

TEST(UblkTranslate, NvmeErrorStatusBecomesErrno) {
  Rig r;
  r.dev.faults().fail_next(1, nvme::Status::make(nvme::sct::MEDIA, nvme::sc::UNRECOVERED_READ_ERROR),
                           {.opcode = nvme::nvm::READ});
  EXPECT_EQ(r.run(0, IO_OP_READ, 0, 8), -ENODATA);
  r.dev.faults().fail_next(1, nvme::Status::make(nvme::sct::MEDIA, nvme::sc::WRITE_FAULT),
                           {.opcode = nvme::nvm::WRITE});
  EXPECT_EQ(r.run(0, IO_OP_WRITE, 0, 8), -ENODATA);
  // One failed piece of a split request fails the whole request: no partial success.
  r.dev.faults().fail_next(1, nvme::Status::make(nvme::sct::GENERIC, nvme::sc::DATA_TRANSFER_ERROR),
                           {.opcode = nvme::nvm::READ});
  EXPECT_EQ(r.run(1, IO_OP_READ, 0, TAG_BYTES / 512), -EIO);
  EXPECT_EQ(r.tr->busy(), 0u);
  // The controller's own LBA check: pretend the namespace is larger than it is.
  r.geo.nsze *= 2;
  Translator wide(*r.qp, r.geo, TAGS, &Rig::done, &r);
  r.results.erase(2);
  wide.start(2, IoDesc{IO_OP_READ, 8, r.geo.nsze / 2, 0}, r.bufs[2]);
  // Bounded in time, not in polls: the software controller's worker is another thread,
  // and a loaded machine may not run it within any fixed number of polls.
  auto until = std::chrono::steady_clock::now() + 5s;
  while (!r.results.count(2) && std::chrono::steady_clock::now() < until) wide.poll();
  ASSERT_TRUE(r.results.count(2)) << "the out-of-range read never ended";
  EXPECT_EQ(r.results[2], -EREMOTEIO);
  // Out of range by the translator's own geometry, and an unknown operation.
  EXPECT_EQ(r.run(3, IO_OP_READ, r.ctrl->ns(1).nsze - 4, 8), -EREMOTEIO);
  EXPECT_EQ(r.run(3, IO_OP_WRITE_SAME, 0, 8), -EOPNOTSUPP);
  EXPECT_EQ(r.tr->counters().errors.load(), 5u);
}

TEST(UblkTranslate, ControllerFatalFailsInFlightWithEio) {
  Rig r;
  ASSERT_EQ(r.run(0, IO_OP_READ, 0, 8), 4096);
  r.results.clear();
  r.dev.faults().freeze();  // commands are fetched by nobody: they stay in flight
  r.tr->start(0, IoDesc{IO_OP_READ, 8, 0, 0}, r.bufs[0]);
  r.tr->start(1, IoDesc{IO_OP_WRITE, 8, 64, 0}, r.bufs[1]);
  for (int i = 0; i < 100; ++i) r.tr->poll();
  EXPECT_EQ(r.tr->busy(), 2u);
  r.dev.faults().resume();
  r.dev.faults().fatal();
  auto until = std::chrono::steady_clock::now() + 5s;
  while (r.results.size() < 2 && std::chrono::steady_clock::now() < until) r.tr->poll();
  ASSERT_EQ(r.results.size(), 2u);
  EXPECT_EQ(r.results[0], -EIO);
  EXPECT_EQ(r.results[1], -EIO);
  r.tr->set_failed(true);  // what the server does once it sees CSTS.CFS
  EXPECT_EQ(r.run(2, IO_OP_READ, 0, 8), -EIO);
}

TEST(UblkTranslate, ErrnoTable) {
  using nvme::Completion, nvme::Status, nvme::HostStatus;
  namespace sct = nvme::sct;
  namespace sc = nvme::sc;
  EXPECT_EQ(completion_errno(Completion{}), 0);
  EXPECT_EQ(completion_errno(Completion{Status::make(sct::GENERIC, sc::INVALID_OPCODE)}), -EOPNOTSUPP);
  EXPECT_EQ(completion_errno(Completion{Status::make(sct::GENERIC, sc::CAPACITY_EXCEEDED)}), -ENOSPC);
  EXPECT_EQ(completion_errno(Completion{Status::make(sct::GENERIC, sc::RESERVATION_CONFLICT)}), -EBADE);
  EXPECT_EQ(completion_errno(Completion{Status::make(sct::GENERIC, sc::NAMESPACE_WRITE_PROTECTED)}), -EIO);
  EXPECT_EQ(completion_errno(Completion{Status::make(sct::PATH, 0)}), -EIO);
  EXPECT_EQ(completion_errno(Completion{Status{}, 0, HostStatus::timeout}), -ETIMEDOUT);
  EXPECT_EQ(completion_errno(Completion{Status{}, 0, HostStatus::controller_fatal}), -EIO);
  EXPECT_EQ(completion_errno(Completion{Status{}, 0, HostStatus::aborted_reset}), -EIO);
}

TEST(UblkParams, FromIdentify) {
  Rig r(4096);
  Params p = make_params(r.ctrl->id(), r.ctrl->ns(1), 128 << 10);
  EXPECT_EQ(p.len, sizeof(Params));
  EXPECT_EQ(p.basic.logical_bs_shift, 12);
  EXPECT_GE(p.basic.physical_bs_shift, 12);
  EXPECT_EQ(p.basic.max_sectors, 256u);
  EXPECT_EQ(p.basic.dev_sectors, (256ull << 20) / 512);
  EXPECT_TRUE(p.basic.attrs & ATTR_VOLATILE_CACHE);  // the software controller reports VWC
  EXPECT_TRUE(p.types & PARAM_TYPE_DISCARD);         // and ONCS DSM + Write Zeroes
  EXPECT_EQ(p.discard.max_discard_segments, 1);
  EXPECT_EQ(p.discard.max_write_zeroes_sectors, 65536u * 8);
  EXPECT_NE(p.discard.discard_granularity, 0u);
  EXPECT_NO_THROW(check_lba_format(r.ctrl->ns(1), "soft0"));
}

TEST(UblkParams, LbaFormatsUblkCannotTake) {
  nvme::Namespace ns;
  ns.nsid = 3;
  ns.lba_size = 8192;
  try {
    check_lba_format(ns, "ctrl0");
    FAIL() << "8 KiB blocks accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::not_supported);
    EXPECT_NE(std::string(e.what()).find("namespace 3 has 8192-byte blocks"), std::string::npos) << e.what();
  }
  auto id = std::make_shared<nvme::IdentifyNamespace>();
  std::memset(id.get(), 0, sizeof *id);
  id->lbaf[0] = nvme::LbaFormat{8, 12, 0};
  ns.lba_size = 4096;
  ns.id = id;
  expect_error([&] { check_lba_format(ns, "ctrl0"); }, Errc::not_supported, "8 bytes of metadata per block, which ublk cannot pass");
  id->lbaf[0].ms = 0;
  EXPECT_NO_THROW(check_lba_format(ns, "ctrl0"));
}
