// Register-level tests of the software controller: bring-up by hand, admin and NVM
// commands, the strict error statuses, CQ flow control and fault injection.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <vector>

#include "emu/controller.hpp"
#include "emu/raw_host.hpp"
#include "spec/identify.hpp"

namespace aisio::emu {
namespace {

using namespace std::chrono_literals;
using test::RawHost;
using test::status_of;
namespace sc = nvme::sc;
namespace sct = nvme::sct;

EmuConfig small_config() {
  EmuConfig c;
  c.mqes = 255;
  c.mdts = 5;  // 128 KiB
  c.max_io_queues = 8;
  c.workers = 2;
  c.idle = {20, 10, 200};
  c.namespaces = {NamespaceConfig{16u << 20, 512, Backing::ram, ""}};
  return c;
}

class EmuTest : public ::testing::Test {
 protected:
  void start(EmuConfig c = small_config()) {
    ctrl = std::make_unique<SoftController>(std::move(c));
    ctrl->start();
    host = std::make_unique<RawHost>(ctrl->bar0(), ctrl->dma());
  }
  void up(EmuConfig c = small_config()) {
    start(std::move(c));
    ASSERT_TRUE(host->enable()) << ctrl->last_error();
    ASSERT_TRUE(host->create_pair(1).ok());
  }
  nvme::Cqe io(const nvme::Sqe& cmd) { return host->run(host->io(1), cmd); }
  nvme::Status io_status(const nvme::Sqe& cmd) { return status_of(io(cmd)); }
  // Read or write nlb blocks at slba through buf (PRPs built by hand).
  nvme::Sqe rw(uint8_t opc, uint64_t slba, uint32_t nlb, const DmaBuffer& buf, size_t off = 0) {
    nvme::Sqe s = nvme::cmd::rw(opc, 1, slba, nlb);
    size_t len = size_t(nlb) * 512;
    s.prp1 = buf.iova(off);
    size_t first = 4096 - (s.prp1 & 4095);
    if (len > first) {
      size_t rest = len - first;
      if (rest <= 4096) {
        s.prp2 = buf.iova(off + first);
      } else {
        lists.push_back(host->heap().alloc(4096, 4096));
        auto* l = lists.back().as<uint64_t>();
        for (size_t o = first, i = 0; o < len; o += 4096, ++i) l[i] = buf.iova(off + o);
        s.prp2 = lists.back().iova();
      }
    }
    return s;
  }
  static void fill(uint8_t* p, size_t n, uint8_t seed) {
    for (size_t i = 0; i < n; ++i) p[i] = uint8_t(seed + i * 7 + (i >> 9));
  }
  static bool is(nvme::Status st, uint8_t type, uint8_t code) { return st.is(type, code); }

  std::unique_ptr<SoftController> ctrl;
  std::unique_ptr<RawHost> host;
  std::vector<DmaBuffer> lists;
};

TEST_F(EmuTest, CapabilitiesAndVersion) {
  start();
  nvme::Cap cap{host->bar().read64(nvme::reg::CAP)};
  EXPECT_EQ(cap.mqes(), 255u);
  EXPECT_TRUE(cap.cqr());
  EXPECT_EQ(cap.dstrd(), 0u);
  EXPECT_EQ(cap.css() & nvme::CAP_CSS_NVM, nvme::CAP_CSS_NVM);
  EXPECT_EQ(cap.mpsmin(), 0u);
  EXPECT_EQ(cap.mpsmax(), 4u);
  EXPECT_EQ(host->bar().read32(nvme::reg::VS), nvme::Version::make(2, 0));
  EXPECT_EQ(host->bar().read32(nvme::reg::CSTS), 0u);
}

TEST_F(EmuTest, BringUpAndIdentify) {
  start();
  ASSERT_TRUE(host->enable());
  auto buf = host->heap().alloc(4096);
  nvme::Sqe id = nvme::cmd::identify(nvme::cns::CONTROLLER, 0);
  id.prp1 = buf.iova();
  ASSERT_TRUE(host->admin_status(id).ok());
  auto& c = *buf.as<nvme::IdentifyController>();
  EXPECT_EQ(nvme::trim_id_string(c.sn, 20), "AISIOEMU0001");
  EXPECT_EQ(nvme::trim_id_string(c.mn, 40), "aisio software NVMe controller");
  EXPECT_EQ(c.nn, 1u);
  EXPECT_EQ(c.mdts, 5);
  EXPECT_EQ(c.sqes, 0x66);
  EXPECT_EQ(c.cqes, 0x44);
  EXPECT_EQ(c.ver, nvme::Version::make(2, 0));
  EXPECT_FALSE(nvme::sgls_supported(c.sgls));
  EXPECT_TRUE(c.oncs & nvme::oncs::DATASET_MANAGEMENT);

  id = nvme::cmd::identify(nvme::cns::NAMESPACE, 1);
  id.prp1 = buf.iova();
  ASSERT_TRUE(host->admin_status(id).ok());
  auto& ns = *buf.as<nvme::IdentifyNamespace>();
  EXPECT_EQ(ns.nsze, (16u << 20) / 512);
  EXPECT_EQ(nvme::lba_size(ns), 512u);

  id = nvme::cmd::identify(nvme::cns::ACTIVE_NSID_LIST, 0);
  id.prp1 = buf.iova();
  ASSERT_TRUE(host->admin_status(id).ok());
  EXPECT_EQ(buf.as<uint32_t>()[0], 1u);
  EXPECT_EQ(buf.as<uint32_t>()[1], 0u);

  id = nvme::cmd::identify(0x55, 0);
  id.prp1 = buf.iova();
  EXPECT_TRUE(is(host->admin_status(id), sct::GENERIC, sc::INVALID_FIELD));
  id = nvme::cmd::identify(nvme::cns::NAMESPACE, 7);
  id.prp1 = buf.iova();
  EXPECT_TRUE(is(host->admin_status(id), sct::GENERIC, sc::INVALID_NAMESPACE_OR_FORMAT));
}

TEST_F(EmuTest, NumberOfQueuesAndFeatures) {
  start();
  ASSERT_TRUE(host->enable());
  auto c = host->admin(nvme::cmd::set_num_queues(4, 100));
  ASSERT_TRUE(status_of(c).ok());
  EXPECT_EQ(c.dw0, 3u | (7u << 16));  // 4 SQs, CQs capped at max_io_queues = 8
  c = host->admin(nvme::cmd::get_features(nvme::feature::NUMBER_OF_QUEUES));
  EXPECT_EQ(c.dw0, 3u | (7u << 16));
  // Queue ids beyond the allocation are invalid.
  auto mem = host->heap().alloc(4096);
  EXPECT_TRUE(is(host->admin_status(nvme::cmd::create_io_sq(5, 16, mem.iova(), 1)), sct::COMMAND_SPECIFIC,
                 sc::INVALID_QUEUE_IDENTIFIER));
  ASSERT_TRUE(host->create_pair(1).ok());
  EXPECT_TRUE(is(host->admin_status(nvme::cmd::set_num_queues(2, 2)), sct::GENERIC, sc::COMMAND_SEQUENCE_ERROR));

  EXPECT_TRUE(host->admin_status(nvme::cmd::set_features(nvme::feature::VOLATILE_WRITE_CACHE, 0)).ok());
  EXPECT_EQ(host->admin(nvme::cmd::get_features(nvme::feature::VOLATILE_WRITE_CACHE)).dw0, 0u);
  EXPECT_TRUE(host->admin_status(nvme::cmd::set_features(nvme::feature::ARBITRATION, 0x03020107)).ok());
  EXPECT_EQ(host->admin(nvme::cmd::get_features(nvme::feature::ARBITRATION)).dw0, 0x03020107u);
  EXPECT_TRUE(host->admin_status(nvme::cmd::set_features(nvme::feature::INTERRUPT_COALESCING, 0x0a05)).ok());
  EXPECT_TRUE(is(host->admin_status(nvme::cmd::set_features(0x7E, 0)), sct::GENERIC, sc::INVALID_FIELD));
  EXPECT_TRUE(is(host->admin_status(nvme::cmd::get_features(0x7E)), sct::GENERIC, sc::INVALID_FIELD));
  EXPECT_TRUE(host->admin_status(nvme::cmd::make(nvme::admin::KEEP_ALIVE)).ok());
  EXPECT_EQ(host->admin(nvme::cmd::abort(1, 0)).dw0 & 1, 1u);  // nothing left to abort
}

TEST_F(EmuTest, WriteReadVerify) {
  up();
  auto w = host->heap().alloc(64 << 10), r = host->heap().alloc(64 << 10);
  fill(w.data(), w.size(), 3);
  // 1 block, 2 pages, and 64 KiB at a dword offset (PRP1 offset + PRP list).
  ASSERT_TRUE(io_status(rw(nvme::nvm::WRITE, 0, 1, w)).ok());
  ASSERT_TRUE(io_status(rw(nvme::nvm::WRITE, 10, 16, w)).ok());
  ASSERT_TRUE(io_status(rw(nvme::nvm::WRITE, 100, 120, w, 512)).ok());
  ASSERT_TRUE(io_status(rw(nvme::nvm::READ, 100, 120, r, 1028)).ok());
  EXPECT_EQ(std::memcmp(r.data() + 1028, w.data() + 512, 120 * 512), 0);
  ASSERT_TRUE(io_status(rw(nvme::nvm::READ, 10, 16, r)).ok());
  EXPECT_EQ(std::memcmp(r.data(), w.data(), 16 * 512), 0);
  EXPECT_TRUE(io_status(rw(nvme::nvm::COMPARE, 10, 16, w)).ok());
  EXPECT_TRUE(is(io_status(rw(nvme::nvm::COMPARE, 11, 16, w)), sct::MEDIA, sc::COMPARE_FAILURE));
  EXPECT_TRUE(io_status(nvme::cmd::flush(1)).ok());
  EXPECT_TRUE(io_status(nvme::cmd::flush(0xFFFFFFFF)).ok());
  auto st = ctrl->stats();
  EXPECT_EQ(st.write_commands, 3u);
  EXPECT_GE(st.bytes_written, (1u + 16 + 120) * 512);
}

TEST_F(EmuTest, ChainedPrpList) {
  up();
  // 5 pages after PRP1: the first list holds 2 entries at the end of its page (one
  // data page + the pointer to the next list page), the chained page holds the rest.
  auto data = host->heap().alloc(6 * 4096), out = host->heap().alloc(6 * 4096);
  fill(data.data(), data.size(), 9);
  auto list = host->heap().alloc(2 * 4096, 4096);
  auto* l = list.as<uint64_t>();
  l[510] = data.iova(4096);
  l[511] = list.iova(4096);
  for (int i = 0; i < 4; ++i) l[512 + i] = data.iova(8192 + i * 4096);
  nvme::Sqe s = nvme::cmd::write(1, 0, 48);
  s.prp1 = data.iova();
  s.prp2 = list.iova(510 * 8);
  ASSERT_TRUE(io_status(s).ok());
  ASSERT_TRUE(io_status(rw(nvme::nvm::READ, 0, 48, out)).ok());
  EXPECT_EQ(std::memcmp(out.data(), data.data(), 48 * 512), 0);
  // A chain pointer with an offset is a PRP Offset Invalid.
  l[511] = list.iova(4096) + 8;
  EXPECT_TRUE(is(io_status(s), sct::GENERIC, sc::PRP_OFFSET_INVALID));
}

TEST_F(EmuTest, StrictNvmErrors) {
  up();
  auto buf = host->heap().alloc(256 << 10);
  uint64_t nsze = (16u << 20) / 512;
  EXPECT_TRUE(is(io_status(nvme::cmd::make(0x7E, 1)), sct::GENERIC, sc::INVALID_OPCODE));
  EXPECT_TRUE(is(io_status(rw(nvme::nvm::READ, nsze - 1, 2, buf)), sct::GENERIC, sc::LBA_OUT_OF_RANGE));
  EXPECT_TRUE(io_status(rw(nvme::nvm::READ, nsze - 2, 2, buf)).ok());
  nvme::Sqe s = rw(nvme::nvm::READ, 0, 1, buf);
  s.nsid = 2;
  EXPECT_TRUE(is(io_status(s), sct::GENERIC, sc::INVALID_NAMESPACE_OR_FORMAT));
  s.nsid = 0;
  EXPECT_TRUE(is(io_status(s), sct::GENERIC, sc::INVALID_NAMESPACE_OR_FORMAT));
  // MDTS = 128 KiB: 257 blocks is one too many.
  EXPECT_TRUE(is(io_status(rw(nvme::nvm::READ, 0, 257, buf)), sct::GENERIC, sc::INVALID_FIELD));
  EXPECT_TRUE(io_status(rw(nvme::nvm::READ, 0, 256, buf)).ok());
  // PRP1 not dword aligned; PRP2 (second page) with an offset.
  s = rw(nvme::nvm::READ, 0, 1, buf);
  s.prp1 += 2;
  EXPECT_TRUE(is(io_status(s), sct::GENERIC, sc::PRP_OFFSET_INVALID));
  s = rw(nvme::nvm::READ, 0, 16, buf);
  s.prp2 += 512;
  EXPECT_TRUE(is(io_status(s), sct::GENERIC, sc::PRP_OFFSET_INVALID));
  // Memory outside every DMA region.
  s = rw(nvme::nvm::READ, 0, 1, buf);
  s.prp1 = (uint64_t(200) << 40) | 0x1000;
  EXPECT_TRUE(is(io_status(s), sct::GENERIC, sc::DATA_TRANSFER_ERROR));
  s.prp1 = buf.iova(buf.size() - 512) + (uint64_t(1) << 30);  // same region, past its end
  EXPECT_TRUE(is(io_status(s), sct::GENERIC, sc::DATA_TRANSFER_ERROR));
  // SGLs are not enabled here.
  s = rw(nvme::nvm::READ, 0, 1, buf);
  s.flags = nvme::PSDT_SGL_MPTR_CONTIG;
  EXPECT_TRUE(is(io_status(s), sct::GENERIC, sc::INVALID_FIELD));
  EXPECT_EQ(ctrl->stats().errors, 10u);
}

TEST_F(EmuTest, StrictQueueErrors) {
  start();
  ASSERT_TRUE(host->enable());
  auto mem = host->heap().alloc(64 << 10);
  auto cq = [&](uint16_t qid, uint32_t n) { return host->admin_status(nvme::cmd::create_io_cq(qid, n, mem.iova())); };
  auto sq = [&](uint16_t qid, uint32_t n, uint16_t cqid) {
    return host->admin_status(nvme::cmd::create_io_sq(qid, n, mem.iova(16384), cqid));
  };
  EXPECT_TRUE(is(host->admin_status(nvme::cmd::make(0x7F)), sct::GENERIC, sc::INVALID_OPCODE));
  EXPECT_TRUE(is(cq(0, 16), sct::COMMAND_SPECIFIC, sc::INVALID_QUEUE_IDENTIFIER));
  EXPECT_TRUE(is(cq(9, 16), sct::COMMAND_SPECIFIC, sc::INVALID_QUEUE_IDENTIFIER));  // > max_io_queues
  EXPECT_TRUE(is(cq(1, 1), sct::COMMAND_SPECIFIC, sc::INVALID_QUEUE_SIZE));
  EXPECT_TRUE(is(cq(1, 257), sct::COMMAND_SPECIFIC, sc::INVALID_QUEUE_SIZE));  // MQES + 2
  nvme::Sqe bad = nvme::cmd::create_io_cq(1, 16, mem.iova(), false);
  EXPECT_TRUE(is(host->admin_status(bad), sct::GENERIC, sc::INVALID_FIELD));  // CAP.CQR
  bad = nvme::cmd::create_io_cq(1, 16, mem.iova() + 64);
  EXPECT_TRUE(is(host->admin_status(bad), sct::GENERIC, sc::PRP_OFFSET_INVALID));
  EXPECT_TRUE(cq(1, 256).ok());
  EXPECT_TRUE(is(cq(1, 16), sct::COMMAND_SPECIFIC, sc::INVALID_QUEUE_IDENTIFIER));  // exists
  EXPECT_TRUE(is(sq(1, 16, 2), sct::COMMAND_SPECIFIC, sc::COMPLETION_QUEUE_INVALID));
  EXPECT_TRUE(is(sq(1, 16, 0), sct::COMMAND_SPECIFIC, sc::COMPLETION_QUEUE_INVALID));
  EXPECT_TRUE(is(sq(0, 16, 1), sct::COMMAND_SPECIFIC, sc::INVALID_QUEUE_IDENTIFIER));
  EXPECT_TRUE(is(sq(1, 300, 1), sct::COMMAND_SPECIFIC, sc::INVALID_QUEUE_SIZE));
  EXPECT_TRUE(sq(1, 16, 1).ok());
  EXPECT_TRUE(is(sq(1, 16, 1), sct::COMMAND_SPECIFIC, sc::INVALID_QUEUE_IDENTIFIER));
  EXPECT_TRUE(is(host->admin_status(nvme::cmd::delete_io_cq(1)), sct::COMMAND_SPECIFIC, sc::INVALID_QUEUE_DELETION));
  EXPECT_TRUE(is(host->admin_status(nvme::cmd::delete_io_sq(2)), sct::COMMAND_SPECIFIC, sc::INVALID_QUEUE_IDENTIFIER));
  EXPECT_TRUE(is(host->admin_status(nvme::cmd::delete_io_cq(0)), sct::COMMAND_SPECIFIC, sc::INVALID_QUEUE_IDENTIFIER));
  EXPECT_EQ(ctrl->stats().io_submission_queues, 1u);
  EXPECT_TRUE(host->admin_status(nvme::cmd::delete_io_sq(1)).ok());
  EXPECT_TRUE(host->admin_status(nvme::cmd::delete_io_cq(1)).ok());
  EXPECT_EQ(ctrl->stats().io_completion_queues, 0u);
  // Log pages.
  nvme::Sqe log = nvme::cmd::get_log_page(0x7F, 512);
  log.prp1 = mem.iova();
  EXPECT_TRUE(is(host->admin_status(log), sct::COMMAND_SPECIFIC, sc::INVALID_LOG_PAGE));
}

TEST_F(EmuTest, SglDataBlockAndSegments) {
  EmuConfig c = small_config();
  c.sgl = true;
  up(c);
  auto idb = host->heap().alloc(4096);
  nvme::Sqe id = nvme::cmd::identify(nvme::cns::CONTROLLER, 0);
  id.prp1 = idb.iova();
  ASSERT_TRUE(host->admin_status(id).ok());
  EXPECT_TRUE(nvme::sgls_supported(idb.as<nvme::IdentifyController>()->sgls));

  auto data = host->heap().alloc(16384), out = host->heap().alloc(16384), segs = host->heap().alloc(4096);
  fill(data.data(), data.size(), 5);
  auto sgl1 = [](nvme::Sqe& s, uint64_t addr, uint32_t len, uint8_t type) {
    s.flags = nvme::PSDT_SGL_MPTR_CONTIG;
    nvme::SglDescriptor d{addr, len, {}, nvme::sgl::id(type)};
    std::memcpy(&s.prp1, &d, 16);
  };
  // One data block.
  nvme::Sqe w = nvme::cmd::write(1, 0, 8);
  sgl1(w, data.iova(), 4096, nvme::sgl::DATA_BLOCK);
  ASSERT_TRUE(io_status(w).ok());
  // Segment -> Last Segment: three data blocks (1 KiB, 2 KiB, 1 KiB) read back.
  auto* d = segs.as<nvme::SglDescriptor>();
  d[0] = {out.iova(0), 1024, {}, nvme::sgl::id(nvme::sgl::DATA_BLOCK)};
  d[1] = {segs.iova(1024), 32, {}, nvme::sgl::id(nvme::sgl::LAST_SEGMENT)};
  auto* d2 = reinterpret_cast<nvme::SglDescriptor*>(segs.data() + 1024);
  d2[0] = {out.iova(8192), 2048, {}, nvme::sgl::id(nvme::sgl::DATA_BLOCK)};
  d2[1] = {out.iova(1024), 1024, {}, nvme::sgl::id(nvme::sgl::DATA_BLOCK)};
  nvme::Sqe r = nvme::cmd::read(1, 0, 8);
  sgl1(r, segs.iova(), 32, nvme::sgl::SEGMENT);
  ASSERT_TRUE(io_status(r).ok());
  EXPECT_EQ(std::memcmp(out.data(), data.data(), 1024), 0);
  EXPECT_EQ(std::memcmp(out.data() + 8192, data.data() + 1024, 2048), 0);
  EXPECT_EQ(std::memcmp(out.data() + 1024, data.data() + 3072, 1024), 0);
  // Lengths that do not add up to the transfer.
  nvme::Sqe s = nvme::cmd::read(1, 0, 8);
  sgl1(s, out.iova(), 2048, nvme::sgl::DATA_BLOCK);
  EXPECT_TRUE(is(io_status(s), sct::GENERIC, sc::DATA_SGL_LENGTH_INVALID));
  sgl1(s, out.iova(), 8192, nvme::sgl::DATA_BLOCK);
  EXPECT_TRUE(is(io_status(s), sct::GENERIC, sc::DATA_SGL_LENGTH_INVALID));
  // Descriptor types we do not support (bit bucket, reserved), in DPTR and in a segment.
  sgl1(s, out.iova(), 4096, nvme::sgl::BIT_BUCKET);
  EXPECT_TRUE(is(io_status(s), sct::GENERIC, sc::SGL_DESCRIPTOR_TYPE_INVALID));
  d2[1].id = nvme::sgl::id(0x9);
  EXPECT_TRUE(is(io_status(r), sct::GENERIC, sc::SGL_DESCRIPTOR_TYPE_INVALID));
  // A segment descriptor that is not the last one of its segment.
  d2[1].id = nvme::sgl::id(nvme::sgl::DATA_BLOCK);
  d[0].id = nvme::sgl::id(nvme::sgl::SEGMENT);
  EXPECT_TRUE(is(io_status(r), sct::GENERIC, sc::INVALID_SGL_SEGMENT_DESCRIPTOR));
}

TEST_F(EmuTest, CompletionQueueFullIsRespected) {
  start();
  ASSERT_TRUE(host->enable());
  ASSERT_TRUE(host->create_pair(1, 16, 4).ok());
  auto& q = host->io(1);
  for (int i = 0; i < 6; ++i) host->submit(q, nvme::cmd::flush(1));
  // A 4-entry CQ holds 3 completions; the 4th entry must stay untouched.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(host->wait(q, 10s, false)) << i;
  std::this_thread::sleep_for(30ms);
  EXPECT_FALSE(host->cqe_ready(q));
  auto* cqes = reinterpret_cast<nvme::Cqe*>(q.cq.data());
  EXPECT_EQ(cqes[3].status, 0u);
  host->ring_cq(q);  // release 3 entries: the other 3 completions arrive
  for (int i = 0; i < 3; ++i) {
    auto c = host->wait(q);
    ASSERT_TRUE(c) << i;
    EXPECT_TRUE(status_of(*c).ok());
  }
  EXPECT_EQ(q.phase, 0);  // wrapped once
}

TEST_F(EmuTest, CompletionFields) {
  up();
  auto& q = host->io(1);
  uint16_t cid = host->submit(q, nvme::cmd::flush(1));
  auto c = host->wait(q);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->cid, cid);
  EXPECT_EQ(c->sqid, 1);
  EXPECT_EQ(c->sqhd, 1);
  EXPECT_TRUE(nvme::cqe_phase(c->status));
}

TEST_F(EmuTest, DeallocateReadsZeros) {
  up();
  auto w = host->heap().alloc(8192), r = host->heap().alloc(8192);
  fill(w.data(), w.size(), 1);
  ASSERT_TRUE(io_status(rw(nvme::nvm::WRITE, 0, 16, w)).ok());
  ASSERT_TRUE(io_status(rw(nvme::nvm::WRITE, 64, 16, w)).ok());
  auto ranges = host->heap().alloc(4096);
  *ranges.as<nvme::DsmRange>() = {0, 16, 0};
  nvme::Sqe dsm = nvme::cmd::dsm_deallocate(1, 1);
  dsm.prp1 = ranges.iova();
  ASSERT_TRUE(io_status(dsm).ok());
  ASSERT_TRUE(io_status(rw(nvme::nvm::READ, 0, 16, r)).ok());
  EXPECT_TRUE(std::all_of(r.data(), r.data() + 8192, [](uint8_t b) { return b == 0; }));
  ASSERT_TRUE(io_status(nvme::cmd::write_zeroes(1, 66, 4)).ok());
  ASSERT_TRUE(io_status(rw(nvme::nvm::READ, 64, 16, r)).ok());
  EXPECT_EQ(std::memcmp(r.data(), w.data(), 1024), 0);
  EXPECT_TRUE(std::all_of(r.data() + 1024, r.data() + 3072, [](uint8_t b) { return b == 0; }));
  EXPECT_EQ(std::memcmp(r.data() + 3072, w.data() + 3072, 8192 - 3072), 0);
  *ranges.as<nvme::DsmRange>() = {0, 16, (16u << 20) / 512 - 8};
  EXPECT_TRUE(is(io_status(dsm), sct::GENERIC, sc::LBA_OUT_OF_RANGE));
}

TEST_F(EmuTest, SmartAndErrorLogs) {
  up();
  auto buf = host->heap().alloc(4096);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(io_status(rw(nvme::nvm::WRITE, 0, 8, buf)).ok());
  ASSERT_TRUE(io_status(rw(nvme::nvm::READ, 0, 8, buf)).ok());
  EXPECT_FALSE(io_status(nvme::cmd::make(0x7E, 1)).ok());
  nvme::Sqe log = nvme::cmd::get_log_page(nvme::log_page::SMART, 512);
  log.prp1 = buf.iova();
  ASSERT_TRUE(host->admin_status(log).ok());
  auto& s = *buf.as<nvme::SmartLog>();
  EXPECT_EQ(s.host_write_commands[0], 3);
  EXPECT_EQ(s.host_read_commands[0], 1);
  EXPECT_EQ(s.data_units_written[0], 1);  // 12 KiB rounds up to one thousand 512-byte units
  log = nvme::cmd::get_log_page(nvme::log_page::ERROR_INFO, 4096);
  log.prp1 = buf.iova();
  ASSERT_TRUE(host->admin_status(log).ok());
  auto* e = buf.as<nvme::ErrorLogEntry>();
  EXPECT_EQ(e[0].error_count, 1u);
  EXPECT_EQ(e[0].sqid, 1);
  EXPECT_EQ(nvme::Status(uint16_t(e[0].status >> 1)).sc(), sc::INVALID_OPCODE);
  log = nvme::cmd::get_log_page(nvme::log_page::FIRMWARE_SLOT, 512);
  log.prp1 = buf.iova();
  EXPECT_TRUE(host->admin_status(log).ok());
  EXPECT_EQ(buf.data()[0], 1);
}

TEST_F(EmuTest, InvalidDoorbellRaisesAsyncEvent) {
  up();
  auto& aq = host->admin_queue();
  uint16_t aer = host->submit(aq, nvme::cmd::make(nvme::admin::ASYNC_EVENT_REQUEST));
  EXPECT_FALSE(host->wait(aq, 20ms));
  // Queue 5 does not exist.
  host->bar().write32(nvme::sq_tail_doorbell(5, 0), 3);
  auto c = host->wait(aq);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->cid, aer);
  EXPECT_TRUE(status_of(*c).ok());
  EXPECT_EQ(nvme::aer::type(c->dw0), nvme::aer::TYPE_ERROR);
  EXPECT_EQ(nvme::aer::info(c->dw0), nvme::aer::INFO_INVALID_DOORBELL_REGISTER);
  EXPECT_EQ(nvme::aer::log_page(c->dw0), nvme::log_page::ERROR_INFO);
  // Reading the log page (RAE clear) unmasks error events; then a tail past the
  // queue's end is reported as an invalid value and ignored.
  auto buf = host->heap().alloc(4096);
  nvme::Sqe log = nvme::cmd::get_log_page(nvme::log_page::ERROR_INFO, 4096);
  log.prp1 = buf.iova();
  ASSERT_TRUE(host->admin_status(log).ok());
  EXPECT_EQ(buf.as<nvme::ErrorLogEntry>()[0].sqid, 5);
  aer = host->submit(aq, nvme::cmd::make(nvme::admin::ASYNC_EVENT_REQUEST));
  host->bar().write32(nvme::sq_tail_doorbell(1, 0), 1000);
  c = host->wait(aq);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->cid, aer);
  EXPECT_EQ(nvme::aer::info(c->dw0), nvme::aer::INFO_INVALID_DOORBELL_VALUE);
  EXPECT_EQ(ctrl->stats().invalid_doorbell_writes, 2u);
  // The queue still works.
  auto& q = host->io(1);
  q.sq_tail = 0;
  EXPECT_TRUE(status_of(host->run(q, nvme::cmd::flush(1))).ok());
}

TEST_F(EmuTest, AsyncEventRequestLimit) {
  start();
  ASSERT_TRUE(host->enable());
  auto& aq = host->admin_queue();
  for (int i = 0; i < 4; ++i) host->submit(aq, nvme::cmd::make(nvme::admin::ASYNC_EVENT_REQUEST));
  auto c = host->run(aq, nvme::cmd::make(nvme::admin::ASYNC_EVENT_REQUEST));
  EXPECT_TRUE(is(status_of(c), sct::COMMAND_SPECIFIC, sc::ASYNC_EVENT_LIMIT_EXCEEDED));
}

TEST_F(EmuTest, InjectedFailureAndDroppedCompletion) {
  up();
  auto buf = host->heap().alloc(4096);
  ctrl->faults().fail_next(1, nvme::Status::make(sct::MEDIA, sc::UNRECOVERED_READ_ERROR), {nvme::nvm::READ, 1});
  EXPECT_TRUE(io_status(rw(nvme::nvm::WRITE, 0, 1, buf)).ok());  // does not match
  EXPECT_TRUE(is(io_status(rw(nvme::nvm::READ, 0, 1, buf)), sct::MEDIA, sc::UNRECOVERED_READ_ERROR));
  EXPECT_TRUE(io_status(rw(nvme::nvm::READ, 0, 1, buf)).ok());  // only once

  ctrl->faults().drop_completions(1, {std::nullopt, 1});
  auto& q = host->io(1);
  host->submit(q, nvme::cmd::flush(1));
  EXPECT_FALSE(host->wait(q, 50ms));
  EXPECT_TRUE(io_status(nvme::cmd::flush(1)).ok());
  EXPECT_EQ(ctrl->stats().dropped_completions, 1u);
  // Admin commands can fail too (qid 0).
  ctrl->faults().fail_next(1, nvme::Status::make(sct::GENERIC, sc::INTERNAL_ERROR), {nvme::admin::IDENTIFY, 0});
  nvme::Sqe id = nvme::cmd::identify(nvme::cns::CONTROLLER, 0);
  id.prp1 = buf.iova();
  EXPECT_TRUE(is(host->admin_status(id), sct::GENERIC, sc::INTERNAL_ERROR));
  EXPECT_TRUE(host->admin_status(id).ok());
}

TEST_F(EmuTest, FatalStatusUntilReset) {
  up();
  ctrl->faults().fatal();
  ASSERT_TRUE(host->wait_csts(nvme::csts::CFS, nvme::csts::CFS));
  auto& q = host->io(1);
  host->submit(q, nvme::cmd::flush(1));
  EXPECT_FALSE(host->wait(q, 30ms));  // stopped processing
  ASSERT_TRUE(host->disable());
  EXPECT_EQ(host->bar().read32(nvme::reg::CSTS) & nvme::csts::CFS, 0u);
  ASSERT_TRUE(host->enable());
  ASSERT_TRUE(host->create_pair(1).ok());  // the reset dropped the old queues
  EXPECT_TRUE(io_status(nvme::cmd::flush(1)).ok());
}

TEST_F(EmuTest, FreezeAndResume) {
  up();
  ctrl->faults().freeze();
  auto& q = host->io(1);
  host->submit(q, nvme::cmd::flush(1));
  EXPECT_FALSE(host->wait(q, 30ms));
  ctrl->faults().resume();
  auto c = host->wait(q);
  ASSERT_TRUE(c);
  EXPECT_TRUE(status_of(*c).ok());
}

TEST_F(EmuTest, EnableWithBadConfigurationSetsFatal) {
  start();
  EXPECT_FALSE(host->enable(16, nvme::cc::EN | nvme::cc::iosqes(7) | nvme::cc::iocqes(4)));  // 128-byte SQEs
  EXPECT_TRUE(host->bar().read32(nvme::reg::CSTS) & nvme::csts::CFS);
  EXPECT_NE(ctrl->last_error().find("IOSQES"), std::string::npos);
  ASSERT_TRUE(host->disable());
  EXPECT_FALSE(host->enable(16, RawHost::default_cc(5)));  // MPS above MPSMAX
  ASSERT_TRUE(host->disable());
  EXPECT_TRUE(host->enable());
}

// The spec lets the host set CC.IOSQES/IOCQES after enabling; I/O queues need them.
TEST_F(EmuTest, QueueEntrySizesSetAfterEnable) {
  start();
  ASSERT_TRUE(host->enable(16, nvme::cc::EN));
  auto mem = host->heap().alloc(8192);
  EXPECT_TRUE(is(host->admin_status(nvme::cmd::create_io_cq(1, 16, mem.iova())), sct::COMMAND_SPECIFIC,
                 sc::INVALID_QUEUE_SIZE));
  host->bar().write32(nvme::reg::CC, RawHost::default_cc());
  EXPECT_TRUE(host->create_pair(1).ok());
  EXPECT_TRUE(io_status(nvme::cmd::flush(1)).ok());
}

TEST_F(EmuTest, ShutdownNotification) {
  up();
  host->bar().write32(nvme::reg::CC, RawHost::default_cc() | nvme::cc::shn(nvme::cc::SHN_NORMAL));
  EXPECT_TRUE(host->wait_csts(nvme::csts::shst(3), nvme::csts::shst(nvme::csts::SHST_COMPLETE)));
  ASSERT_TRUE(host->disable());
  EXPECT_EQ(host->bar().read32(nvme::reg::CSTS), 0u);
}

TEST_F(EmuTest, DeviceModelLatencyAndSqDeletionAborts) {
  EmuConfig c = small_config();
  // Long enough that the Delete SQ below always lands while the flushes are held, even
  // on a loaded machine (it only has to be sent after they were fetched).
  c.device_model.latency_us = 300000;
  up(c);
  auto& q = host->io(1);
  auto t0 = test::Clock::now();
  EXPECT_TRUE(io_status(nvme::cmd::flush(1)).ok());
  EXPECT_GE(test::Clock::now() - t0, 299ms);
  // Held (not yet due) commands complete as aborted when their SQ is deleted.
  const uint64_t fetched = ctrl->stats().io_commands + 2;
  host->submit(q, nvme::cmd::flush(1));
  host->submit(q, nvme::cmd::flush(1));
  // Wait for the event (both fetched by the controller, so now held), not for a guess.
  const auto deadline = test::Clock::now() + 10s;
  while (ctrl->stats().io_commands < fetched) {
    ASSERT_LT(test::Clock::now(), deadline) << "the controller did not fetch the two flushes within 10 s";
    std::this_thread::sleep_for(100us);
  }
  EXPECT_TRUE(host->admin_status(nvme::cmd::delete_io_sq(1)).ok());
  for (int i = 0; i < 2; ++i) {
    auto e = host->wait(q, 100ms);
    ASSERT_TRUE(e) << i;
    EXPECT_TRUE(is(status_of(*e), sct::GENERIC, sc::ABORTED_SQ_DELETION));
  }
  EXPECT_TRUE(host->admin_status(nvme::cmd::delete_io_cq(1)).ok());
}

TEST_F(EmuTest, IopsCap) {
  EmuConfig c = small_config();
  c.device_model.iops = 2000;  // 0.5 ms per command
  up(c);
  auto& q = host->io(1);
  auto t0 = test::Clock::now();
  for (int i = 0; i < 40; ++i) host->submit(q, nvme::cmd::flush(1));
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(host->wait(q));
  EXPECT_GE(test::Clock::now() - t0, 15ms);
}

TEST_F(EmuTest, MultipleQueuesOnWorkers) {
  up();
  for (uint16_t qid = 2; qid <= 4; ++qid) ASSERT_TRUE(host->create_pair(qid, 32, 32).ok());
  auto buf = host->heap().alloc(4096 * 4);
  for (int round = 0; round < 20; ++round)
    for (uint16_t qid = 1; qid <= 4; ++qid) {
      nvme::Sqe s = rw(nvme::nvm::WRITE, qid * 100 + round, 1, buf, (qid - 1) * 4096);
      ASSERT_TRUE(status_of(host->run(host->io(qid), s)).ok());
    }
  EXPECT_EQ(ctrl->stats().write_commands, 80u);
}

TEST_F(EmuTest, DoorbellStrideAndLargerPages) {
  EmuConfig c = small_config();
  c.dstrd = 10;  // a 4 KiB page per doorbell
  start(c);
  EXPECT_EQ(host->dstrd(), 10u);
  ASSERT_TRUE(host->enable(16, RawHost::default_cc(1)));  // 8 KiB memory pages
  ASSERT_TRUE(host->create_pair(1).ok());
  // 16 KiB = two 8 KiB pages: PRP1 + PRP2, no list.
  auto w = host->heap().alloc(16384, 8192), r = host->heap().alloc(16384, 8192);
  fill(w.data(), w.size(), 2);
  nvme::Sqe s = nvme::cmd::write(1, 0, 32);
  s.prp1 = w.iova();
  s.prp2 = w.iova(8192);
  ASSERT_TRUE(io_status(s).ok());
  s.opc = nvme::nvm::READ;
  s.prp1 = r.iova();
  s.prp2 = r.iova(8192);
  ASSERT_TRUE(io_status(s).ok());
  EXPECT_EQ(std::memcmp(w.data(), r.data(), 16384), 0);
  s.prp2 = r.iova(4096);  // page aligned for 4 KiB, not for 8 KiB pages
  EXPECT_TRUE(is(io_status(s), sct::GENERIC, sc::PRP_OFFSET_INVALID));
}

TEST_F(EmuTest, NullAndFourKiBNamespaces) {
  EmuConfig c = small_config();
  c.namespaces = {NamespaceConfig{1ull << 40, 4096, Backing::null, ""},
                  NamespaceConfig{1ull << 36, 4096, Backing::ram, ""}};
  up(c);
  auto buf = host->heap().alloc(8192);
  nvme::Sqe s = nvme::cmd::write(1, (1ull << 28) - 2, 2);
  s.prp1 = buf.iova();
  s.prp2 = buf.iova(4096);
  EXPECT_TRUE(io_status(s).ok());
  s.nsid = 2;  // 64 GiB sparse RAM namespace: only touched pages cost memory
  s.cdw10 = 5;
  s.cdw11 = 0;
  fill(buf.data(), 8192, 4);
  EXPECT_TRUE(io_status(s).ok());
  std::vector<uint8_t> copy(buf.data(), buf.data() + 8192);
  std::memset(buf.data(), 0, 8192);
  s.opc = nvme::nvm::READ;
  EXPECT_TRUE(io_status(s).ok());
  EXPECT_EQ(std::memcmp(buf.data(), copy.data(), 8192), 0);
}

TEST_F(EmuTest, FileBackingPersistsAndPunchesHoles) {
  char tmpl[] = "/tmp/aisio-emu-ns-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string path = std::string(tmpl) + "/ns.img";
  EmuConfig c = small_config();
  c.namespaces = {NamespaceConfig{4u << 20, 4096, Backing::file, path}};
  up(c);
  auto buf = host->heap().alloc(128 << 10);
  fill(buf.data(), buf.size(), 8);
  for (uint64_t lba = 0; lba < 256; lba += 32) {
    nvme::Sqe s = nvme::cmd::write(1, lba, 32);
    s.prp1 = buf.iova();
    lists.push_back(host->heap().alloc(4096));
    for (int i = 1; i < 32; ++i) lists.back().as<uint64_t>()[i - 1] = buf.iova(i * 4096);
    s.prp2 = lists.back().iova();
    ASSERT_TRUE(io_status(s).ok());
  }
  ASSERT_TRUE(io_status(nvme::cmd::flush(1)).ok());
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 4 << 20);
  auto used_before = st.st_blocks;
  EXPECT_GE(used_before * 512, 1 << 20);
  auto ranges = host->heap().alloc(4096);
  *ranges.as<nvme::DsmRange>() = {0, 128, 0};
  nvme::Sqe dsm = nvme::cmd::dsm_deallocate(1, 1);
  dsm.prp1 = ranges.iova();
  ASSERT_TRUE(io_status(dsm).ok());
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_LT(st.st_blocks, used_before);  // hole punched
  // The other half survives a restart of the controller on the same file.
  host.reset();
  ctrl.reset();
  lists.clear();
  up(c);
  auto r = host->heap().alloc(4096);
  nvme::Sqe rd = nvme::cmd::read(1, 160, 1);
  rd.prp1 = r.iova();
  ASSERT_TRUE(io_status(rd).ok());
  EXPECT_EQ(std::memcmp(r.data(), buf.data(), 4096), 0);
  rd.cdw10 = 5;
  ASSERT_TRUE(io_status(rd).ok());
  EXPECT_TRUE(std::all_of(r.data(), r.data() + 4096, [](uint8_t b) { return b == 0; }));
  host.reset();
  ctrl.reset();
  std::filesystem::remove_all(tmpl);
}

// Unmapping DMA memory while commands that point into it are in flight: each completes
// with success (it ran before the unmap) or Data Transfer Error, never touching freed memory.
TEST_F(EmuTest, UnmapRacesWithInflightCommands) {
  up();
  auto& q = host->io(1);
  unsigned ok = 0, dte = 0, checks = 0;
  const EmuStats before = ctrl->stats();
  auto media = host->heap().alloc(128 << 10);
  for (int i = 0; i < 100; ++i) {
    auto heap2 = DmaHeap::create(std::make_unique<EmuDmaBackend>(ctrl->dma_space()), 256 << 10);
    auto buf = heap2->alloc(128 << 10);
    const bool write = i % 2 == 0;
    const uint8_t fill = uint8_t(i + 1);
    if (write) std::memset(buf.data(), fill, 128 << 10);
    nvme::Sqe s = rw(write ? nvme::nvm::WRITE : nvme::nvm::READ, 0, 256, buf);
    host->submit(q, s);
    if (i % 3) std::this_thread::sleep_for(std::chrono::microseconds(i * 5));
    buf.reset();
    heap2.reset();  // unmap: waits for the device to leave the region
    auto c = host->wait(q);
    ASSERT_TRUE(c);
    nvme::Status st = status_of(*c);
    if (st.ok()) {
      ++ok;
      // Success means the whole transfer ran before the unmap: a write's data is on
      // the media, all of it.
      if (write) {
        ++checks;
        ASSERT_TRUE(io_status(rw(nvme::nvm::READ, 0, 256, media)).ok());
        auto bad = std::find_if(media.data(), media.data() + (128 << 10), [&](uint8_t b) { return b != fill; });
        ASSERT_EQ(bad, media.data() + (128 << 10))
            << "write " << i << " completed with success, but byte " << (bad - media.data()) << " is not on the media";
      }
    } else if (is(st, sct::GENERIC, sc::DATA_TRANSFER_ERROR)) {
      ++dte;
    } else {
      FAIL() << nvme::status_name(st);
    }
    lists.clear();
  }
  std::printf("  %u completed, %u Data Transfer Error\n", ok, dte);
  // The controller ran every command (and the check reads) and counted exactly the
  // Data Transfer Errors as failures.
  const EmuStats after = ctrl->stats();
  EXPECT_EQ(after.io_commands - before.io_commands, 100u + checks);
  EXPECT_EQ(after.errors - before.errors, dte);
  EXPECT_FALSE(after.fatal);
}

}  // namespace
}  // namespace aisio::emu
