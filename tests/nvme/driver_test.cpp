// The driver against the software controller: bring-up, data integrity, PRP/SGL,
// back-pressure, timeouts, controller fatal status and reset, parallel queues.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>

#include "common/error.hpp"
#include "common/expect_error.hpp"
#include "emu/controller.hpp"
#include "nvme/controller.hpp"

using aisio::test::expect_error;

using namespace aisio;
using namespace aisio::nvme;
using namespace std::chrono_literals;

namespace {

emu::EmuConfig small_config(uint32_t lba = 512, uint8_t mdts = 5) {
  emu::EmuConfig c;
  c.mdts = mdts;
  c.namespaces = {emu::NamespaceConfig{64ull << 20, lba, emu::Backing::ram, ""}};
  return c;
}

struct Rig {
  explicit Rig(emu::EmuConfig cfg, ControllerOptions opt = {}) : dev(std::move(cfg)) {
    dev.start();
    ctrl = Controller::create(dev.bar0(), dev.dma(), opt);
  }
  emu::SoftController dev;
  std::shared_ptr<Controller> ctrl;
};

void fill_random(uint8_t* p, size_t n, uint64_t seed) {
  std::mt19937_64 g(seed);
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = g();
    std::memcpy(p + i, &v, std::min<size_t>(8, n - i));
  }
}

}  // namespace

TEST(Driver, BringUpAndIdentify) {
  Rig r(small_config());
  EXPECT_EQ(r.ctrl->version().major(), 2u);
  EXPECT_EQ(trim_id_string(r.ctrl->id().sn, 20), "AISIOEMU0001");
  ASSERT_EQ(r.ctrl->namespaces().size(), 1u);
  const Namespace& ns = r.ctrl->ns(1);
  EXPECT_EQ(ns.lba_size, 512u);
  EXPECT_EQ(ns.nsze, (64ull << 20) / 512);
  EXPECT_EQ(r.ctrl->mdts_bytes(), 128u * 1024);
  EXPECT_GE(r.ctrl->io_queue_limit(), 4);
  EXPECT_TRUE(r.ctrl->csts() & csts::RDY);
  expect_error([&] { r.ctrl->ns(7); }, Errc::invalid_argument, "namespace 7 is not active");
}

TEST(Driver, RandomWritesAndReadsVerified) {
  for (uint32_t lba : {512u, 4096u}) {
    Rig r(small_config(lba));
    auto qp = r.ctrl->create_queue_pair({.depth = 64});
    const uint64_t nsze = r.ctrl->ns(1).nsze;
    const size_t mdts_blocks = r.ctrl->mdts_bytes() / lba;
    auto wbuf = r.ctrl->dma()->alloc(4 * r.ctrl->mdts_bytes(), 4096);
    auto rbuf = r.ctrl->dma()->alloc(4 * r.ctrl->mdts_bytes(), 4096);
    std::mt19937_64 g(lba);
    for (int i = 0; i < 60; ++i) {
      // 1 block up to 3.5 x MDTS: the driver splits what exceeds MDTS.
      uint32_t nlb = i == 0 ? 1 : uint32_t(1 + g() % (mdts_blocks * 7 / 2));
      uint64_t slba = g() % (nsze - nlb);
      size_t bytes = size_t(nlb) * lba;
      fill_random(wbuf.data(), bytes, g());
      Completion w = qp->write(1, slba, nlb, wbuf);
      ASSERT_TRUE(w.ok()) << w.describe();
      std::memset(rbuf.data(), 0xA5, bytes);
      Completion rd = qp->read(1, slba, nlb, rbuf);
      ASSERT_TRUE(rd.ok()) << rd.describe();
      ASSERT_EQ(std::memcmp(wbuf.data(), rbuf.data(), bytes), 0) << "lba size " << lba << " slba " << slba << " nlb " << nlb;
    }
    EXPECT_EQ(qp->in_flight(), 0u);
  }
}

TEST(Driver, PrpEdgeCasesEndToEnd) {
  // MDTS unlimited and an 8 MiB queue limit: lists of more than one PRP list page.
  Rig r(small_config(512, 0));
  auto qp = r.ctrl->create_queue_pair({.depth = 8, .max_transfer = 8u << 20});
  auto wbuf = r.ctrl->dma()->alloc(9u << 20, 4096);
  auto rbuf = r.ctrl->dma()->alloc(9u << 20, 4096);
  struct Case { size_t off; uint32_t nlb; const char* what; };
  for (Case c : {Case{512, 8, "non-zero first-page offset"}, Case{3584, 2, "exactly one page crossing"},
                 Case{0, 24, "three pages: PRP list"}, Case{1024, 5000, "list of more than one list page"},
                 Case{2048, 16384, "8 MiB from mid-page"}}) {
    size_t bytes = size_t(c.nlb) * 512;
    fill_random(wbuf.data() + c.off, bytes, c.nlb);
    ASSERT_TRUE(qp->write(1, 100, c.nlb, wbuf, c.off).ok()) << c.what;
    std::memset(rbuf.data(), 0, rbuf.size());
    ASSERT_TRUE(qp->read(1, 100, c.nlb, rbuf, 4096 - (c.off % 4096 ? c.off % 4096 : 0)).ok()) << c.what;
    size_t roff = 4096 - (c.off % 4096 ? c.off % 4096 : 0);
    ASSERT_EQ(std::memcmp(wbuf.data() + c.off, rbuf.data() + roff, bytes), 0) << c.what;
  }
}

TEST(Driver, SglPath) {
  auto cfg = small_config();
  cfg.sgl = true;
  Rig r(cfg);
  ASSERT_TRUE(r.ctrl->sgl_supported());
  auto qp = r.ctrl->create_queue_pair({.depth = 16, .use_sgl = true});
  auto wbuf = r.ctrl->dma()->alloc(256 * 1024, 4096);
  auto rbuf = r.ctrl->dma()->alloc(256 * 1024, 4096);
  fill_random(wbuf.data(), wbuf.size(), 7);
  ASSERT_TRUE(qp->write(1, 8, 500, wbuf, 12).ok());
  ASSERT_TRUE(qp->read(1, 8, 500, rbuf, 100).ok());
  EXPECT_EQ(std::memcmp(wbuf.data() + 12, rbuf.data() + 100, 500 * 512), 0);
}

TEST(Driver, SglRefusedWithoutControllerSupport) {
  Rig r(small_config());
  expect_error([&] { r.ctrl->create_queue_pair({.depth = 16, .use_sgl = true}); }, Errc::not_supported,
               "controller does not support SGLs (Identify SGLS)");
}

TEST(Driver, QueueFullBackPressure) {
  Rig r(small_config());
  auto qp = r.ctrl->create_queue_pair({.depth = 8});
  auto buf = r.ctrl->dma()->alloc(4096 * 8, 4096);
  std::atomic<int> done{0};
  auto cb = +[](void* a, Completion c) {
    EXPECT_TRUE(c.ok()) << c.describe();
    ++*static_cast<std::atomic<int>*>(a);
  };
  int queued = 0;
  while (qp->submit_io(nvm::READ, 1, queued, 1, buf, 0, cb, &done)) ++queued;
  EXPECT_EQ(queued, 7) << "a queue of depth 8 holds 7 commands";
  EXPECT_EQ(qp->in_flight(), 7u);
  qp->ring();
  while (done < 7) qp->poll();
  EXPECT_TRUE(qp->submit_io(nvm::READ, 1, 0, 1, buf, 0, cb, &done)) << "slots are free again";
  qp->ring();
  while (done < 8) qp->poll();
  EXPECT_EQ(qp->stats().doorbells, 2u) << "one doorbell write per batch";
}

TEST(Driver, DroppedCompletionEndsInTimeout) {
  Rig r(small_config());
  auto qp = r.ctrl->create_queue_pair({.depth = 8, .timeout = 200ms});
  auto buf = r.ctrl->dma()->alloc(4096, 4096);
  r.dev.faults().drop_completions(1, {.opcode = nvm::READ, .qid = qp->qid()});
  auto t0 = std::chrono::steady_clock::now();
  Completion c = qp->read(1, 0, 1, buf);
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(c.host, HostStatus::timeout) << c.describe();
  EXPECT_GE(waited, 200ms);
  EXPECT_LT(waited, 5s);
  EXPECT_EQ(qp->stats().timeouts, 1u);
  // The slot of the lost command stays reserved; others still work.
  EXPECT_EQ(qp->in_flight(), 1u);
  EXPECT_TRUE(qp->read(1, 0, 1, buf).ok());
}

TEST(Driver, UnresponsiveControllerTimesOutInsteadOfHanging) {
  Rig r(small_config());
  auto qp = r.ctrl->create_queue_pair({.depth = 8, .timeout = 150ms});
  auto buf = r.ctrl->dma()->alloc(4096, 4096);
  r.dev.faults().freeze();
  Completion c = qp->read(1, 0, 1, buf);
  EXPECT_EQ(c.host, HostStatus::timeout);
  r.dev.faults().resume();
}

TEST(Driver, ControllerFatalThenResetRecovers) {
  Rig r(small_config());
  auto qp = r.ctrl->create_queue_pair({.depth = 16, .timeout = 2s});
  auto buf = r.ctrl->dma()->alloc(8192, 4096);
  fill_random(buf.data(), 4096, 3);
  ASSERT_TRUE(qp->write(1, 10, 8, buf).ok());
  r.dev.faults().fatal();  // the device thread raises CSTS.CFS asynchronously
  for (int i = 0; i < 1000 && !r.ctrl->fatal(); ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(r.ctrl->fatal());
  Completion c = qp->read(1, 10, 8, buf, 4096);
  EXPECT_EQ(c.host, HostStatus::controller_fatal) << c.describe();
  r.ctrl->reset();
  EXPECT_FALSE(r.ctrl->fatal());
  Completion again = qp->read(1, 10, 8, buf, 4096);
  ASSERT_TRUE(again.ok()) << again.describe();
  EXPECT_EQ(std::memcmp(buf.data(), buf.data() + 4096, 4096), 0);
}

TEST(Driver, LbaOutOfRange) {
  Rig r(small_config());
  auto qp = r.ctrl->create_queue_pair({.depth = 8});
  auto buf = r.ctrl->dma()->alloc(8192, 4096);
  uint64_t nsze = r.ctrl->ns(1).nsze;
  Completion c = qp->read(1, nsze - 1, 2, buf);
  EXPECT_TRUE(c.status.is(sct::GENERIC, sc::LBA_OUT_OF_RANGE)) << c.describe();
  EXPECT_EQ(c.describe().substr(0, 16), "LBA Out of Range");
  EXPECT_TRUE(qp->read(1, nsze - 1, 1, buf).ok());
}

TEST(Driver, InjectedStatusIsReported) {
  Rig r(small_config());
  auto qp = r.ctrl->create_queue_pair({.depth = 8});
  auto buf = r.ctrl->dma()->alloc(4096, 4096);
  r.dev.faults().fail_next(1, Status::make(sct::MEDIA, sc::UNRECOVERED_READ_ERROR), {.opcode = nvm::READ});
  Completion c = qp->read(1, 0, 1, buf);
  EXPECT_TRUE(c.status.is(sct::MEDIA, sc::UNRECOVERED_READ_ERROR)) << c.describe();
  EXPECT_TRUE(qp->read(1, 0, 1, buf).ok());
}

TEST(Driver, BadHostInputIsAClearError) {
  Rig r(small_config());
  auto qp = r.ctrl->create_queue_pair({.depth = 8});
  auto buf = r.ctrl->dma()->alloc(4096, 4096);
  expect_error([&] { qp->read(1, 0, 16, buf); }, Errc::invalid_argument,
               "data range [0, +8192) is outside the 4096-byte buffer");
  expect_error([&] { qp->read(1, 0, 1, buf, 2); }, Errc::invalid_argument,
               "data buffer address is not dword aligned (PRP offset rule)");
  expect_error([&] { qp->read(9, 0, 1, buf); }, Errc::invalid_argument, "namespace 9 is not active");
  expect_error([&] { r.ctrl->create_queue_pair({.depth = 1}); }, Errc::invalid_argument, "queue depth 1 outside 2..");
  expect_error([&] { r.ctrl->create_queue_pair({.depth = 1u << 20}); }, Errc::invalid_argument,
               "queue depth 1048576 outside 2..");
  EXPECT_TRUE(qp->read(1, 0, 1, buf).ok());
}

TEST(Driver, RawInvalidOpcodeAndNamespace) {
  Rig r(small_config());
  auto qp = r.ctrl->create_queue_pair({.depth = 8});
  EXPECT_TRUE(qp->execute(cmd::make(0x7E, 1)).status.is(sct::GENERIC, sc::INVALID_OPCODE));
  auto buf = r.ctrl->dma()->alloc(4096, 4096);
  Completion c = qp->execute(cmd::read(5, 0, 1), &buf, 0, 512);
  EXPECT_TRUE(c.status.is(sct::GENERIC, sc::INVALID_NAMESPACE_OR_FORMAT)) << c.describe();
  EXPECT_TRUE(r.ctrl->admin(cmd::make(0x7F)).status.is(sct::GENERIC, sc::INVALID_OPCODE));
}

TEST(Driver, FourThreadsOnFourQueues) {
  auto cfg = small_config();
  cfg.workers = 2;
  Rig r(cfg);
  std::atomic<int> failures{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      auto qp = r.ctrl->create_queue_pair({.depth = 32});
      auto wbuf = r.ctrl->dma()->alloc(64 * 1024, 4096);
      auto rbuf = r.ctrl->dma()->alloc(64 * 1024, 4096);
      std::mt19937_64 g(t);
      for (int i = 0; i < 100; ++i) {
        uint32_t nlb = 1 + g() % 128;
        uint64_t slba = uint64_t(t) * 16384 + g() % (16384 - nlb);  // disjoint per thread
        fill_random(wbuf.data(), nlb * 512, g());
        if (!qp->write(1, slba, nlb, wbuf).ok() || !qp->read(1, slba, nlb, rbuf).ok() ||
            std::memcmp(wbuf.data(), rbuf.data(), nlb * 512) != 0)
          ++failures;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(failures, 0);
}

TEST(Driver, AsyncDeepQueueManyCompletions) {
  Rig r(small_config());
  auto qp = r.ctrl->create_queue_pair({.depth = 128});
  auto buf = r.ctrl->dma()->alloc(4096 * 128, 4096);
  struct Ctx { uint64_t done = 0; uint64_t errors = 0; } ctx;
  auto cb = +[](void* a, Completion c) {
    auto* x = static_cast<Ctx*>(a);
    ++x->done;
    if (!c.ok()) ++x->errors;
  };
  uint64_t submitted = 0, target = 20000;
  while (ctx.done < target) {
    while (submitted < target && qp->submit_io(nvm::READ, 1, submitted % 1000, 8, buf, (submitted % 128) * 4096, cb, &ctx))
      ++submitted;
    qp->ring();
    qp->poll();
  }
  EXPECT_EQ(ctx.errors, 0u);
  EXPECT_EQ(qp->stats().completed, target);
  EXPECT_EQ(qp->stats().spurious, 0u);
}

TEST(Driver, ShutdownAndQueueReleaseOrder) {
  Rig r(small_config());
  {
    auto a = r.ctrl->create_queue_pair({.depth = 4});
    auto b = r.ctrl->create_queue_pair({.depth = 4});
    EXPECT_NE(a->qid(), b->qid());
  }
  // qids are reused after release
  auto c = r.ctrl->create_queue_pair({.depth = 4});
  EXPECT_EQ(c->qid(), 1);
  c.reset();
  r.ctrl->shutdown();
  EXPECT_EQ(csts::get_shst(r.ctrl->csts()), csts::SHST_COMPLETE);
}

TEST(Driver, ErrorAndSmartLogs) {
  Rig r(small_config());
  auto qp = r.ctrl->create_queue_pair({.depth = 8});
  auto buf = r.ctrl->dma()->alloc(4096, 4096);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(qp->read(1, 0, 8, buf).ok());
  SmartLog s = r.ctrl->smart_log();
  uint64_t reads = 0;
  std::memcpy(&reads, s.host_read_commands, 8);
  EXPECT_GE(reads, 5u);
  EXPECT_NO_THROW(r.ctrl->error_log(4));
}

namespace {
// Two kinds of command on one queue pair: "hot" ones, whose callback is named to
// poll<>() (called directly), and others (called through the slot's pointer). Each
// records which command ended and how; hot ones resubmit themselves a few times from
// their own completion, as the benchmark's loop does.
struct Tally {
  QueuePair* qp = nullptr;
  const DmaBuffer* buf = nullptr;
  uint32_t id = 0;
  int resubmits = 0;
  int hot_calls = 0, cold_calls = 0, errors = 0;
  bool ok_last = true;
};
void hot_cb(void* a, Completion c) {
  auto* t = static_cast<Tally*>(a);
  ++t->hot_calls;
  t->ok_last = c.ok();
  t->errors += !c.ok();
  if (t->resubmits > 0) {
    --t->resubmits;
    EXPECT_TRUE(t->qp->submit(cmd::rw(nvm::READ, 1, t->id, 1), *t->buf, size_t(t->id) * 4096, 4096, hot_cb, t));
  }
}
void cold_cb(void* a, Completion c) {
  auto* t = static_cast<Tally*>(a);
  ++t->cold_calls;
  t->ok_last = c.ok();
  t->errors += !c.ok();
}
}  // namespace

TEST(Driver, HotPollCallsEachCommandsOwnCallback) {
  Rig r(small_config());
  auto qp = r.ctrl->create_queue_pair({.depth = 32});
  auto buf = r.ctrl->dma()->alloc(4096 * 16, 4096);
  // The 3rd read the controller sees fails: whichever kind it is, its own callback gets it.
  r.dev.faults().fail_next(1, Status::make(sct::MEDIA, sc::UNRECOVERED_READ_ERROR), {.opcode = nvm::READ});
  std::vector<Tally> t(16);
  for (uint32_t i = 0; i < 16; ++i) {
    t[i] = Tally{qp.get(), &buf, i, i % 2 ? 0 : 5};
    ASSERT_TRUE(qp->submit_io(nvm::READ, 1, i, 1, buf, size_t(i) * 4096, i % 2 ? cold_cb : hot_cb, &t[i]));
  }
  qp->ring();
  uint32_t reaped = 0;
  while (qp->in_flight()) {
    reaped += qp->poll<&hot_cb>();
    qp->ring();
  }
  int errors = 0;
  for (uint32_t i = 0; i < 16; ++i) {
    if (i % 2) {
      EXPECT_EQ(t[i].cold_calls, 1) << i;
      EXPECT_EQ(t[i].hot_calls, 0) << i;
    } else {
      EXPECT_EQ(t[i].hot_calls, 6) << i << ": the first command and 5 resubmitted from its completion";
      EXPECT_EQ(t[i].cold_calls, 0) << i;
    }
    errors += t[i].errors;
  }
  EXPECT_EQ(errors, 1) << "the injected error reaches exactly one callback";
  EXPECT_EQ(reaped, 8u * 6 + 8);
  EXPECT_EQ(qp->stats().completed, 8u * 6 + 8);
  EXPECT_EQ(qp->stats().spurious, 0u);
}

TEST(Driver, HotPollTimeoutStillEndsTheCommand) {
  Rig r(small_config());
  auto qp = r.ctrl->create_queue_pair({.depth = 8, .timeout = 150ms});
  auto buf = r.ctrl->dma()->alloc(4096, 4096);
  r.dev.faults().drop_completions(1, {.opcode = nvm::READ, .qid = qp->qid()});
  Tally t{qp.get(), &buf, 0, 0};
  ASSERT_TRUE(qp->submit_io(nvm::READ, 1, 0, 1, buf, 0, hot_cb, &t));
  qp->ring();
  auto t0 = std::chrono::steady_clock::now();
  while (t.hot_calls == 0 && std::chrono::steady_clock::now() - t0 < 5s) qp->poll<&hot_cb>();
  EXPECT_EQ(t.hot_calls, 1);
  EXPECT_FALSE(t.ok_last);
  EXPECT_EQ(qp->stats().timeouts, 1u);
}

namespace {
// A request on a held slot that resubmits itself from its own completion.
struct HeldReq {
  QueuePair* qp = nullptr;
  QueuePair::Slot* slot = nullptr;
  Sqe sqe{};
  int again = 0;  // resubmissions still to make
  int calls = 0, errors = 0;
  HostStatus last_host = HostStatus::none;
};
void held_cb(void* a, Completion c) {
  auto* r = static_cast<HeldReq*>(a);
  ++r->calls;
  r->errors += !c.ok();
  r->last_host = c.host;
  if (c.ok() && r->again > 0) {
    --r->again;
    r->sqe.cdw10 += 1;  // the next block
    EXPECT_TRUE(r->qp->submit_held(r->slot, r->sqe));
  }
}
Sqe held_read(const DmaBuffer& buf, uint32_t i, uint64_t slba) {
  Sqe s = cmd::rw(nvm::READ, 1, slba, 1);
  EXPECT_EQ(build_prp(s, buf, size_t(i) * 4096, 4096, 12, ListSpace{}), DptrResult::ok);
  return s;
}
}  // namespace

TEST(Driver, HeldSlotsResubmitAndShareTheQueue) {
  Rig r(small_config());
  auto qp = r.ctrl->create_queue_pair({.depth = 8});
  auto buf = r.ctrl->dma()->alloc(4096 * 8, 4096);
  std::vector<HeldReq> req(3);
  for (uint32_t i = 0; i < 3; ++i) {
    req[i].qp = qp.get();
    req[i].slot = qp->hold(held_cb, &req[i]);
    req[i].sqe = held_read(buf, i, 100 * i);
    req[i].again = 10;
  }
  EXPECT_EQ(qp->in_flight(), 0u) << "a held slot without a command is not in flight";
  // 7 slots: 3 held, so ordinary commands get 4.
  std::atomic<int> plain{0};
  auto cb = +[](void* a, Completion c) {
    EXPECT_TRUE(c.ok()) << c.describe();
    ++*static_cast<std::atomic<int>*>(a);
  };
  int queued = 0;
  while (qp->submit_io(nvm::READ, 1, queued, 1, buf, size_t(3 + queued) * 4096, cb, &plain)) ++queued;
  EXPECT_EQ(queued, 4);
  for (auto& x : req) ASSERT_TRUE(qp->submit_held(x.slot, x.sqe));
  EXPECT_FALSE(qp->submit_held(req[0].slot, req[0].sqe)) << "its command has not ended";
  EXPECT_EQ(qp->in_flight(), 7u);
  qp->ring();
  while (qp->in_flight()) {
    qp->poll<&held_cb>();
    qp->ring();
  }
  EXPECT_EQ(plain, 4);
  for (auto& x : req) {
    EXPECT_EQ(x.calls, 11);
    EXPECT_EQ(x.errors, 0);
  }
  EXPECT_EQ(qp->stats().completed, 4u + 33u);
  // Released, a slot returns to the free stack; a second release is a clear error.
  qp->release(req[2].slot);
  queued = 0;
  while (qp->submit_io(nvm::READ, 1, queued, 1, buf, size_t(3 + queued) * 4096, cb, &plain)) ++queued;
  EXPECT_EQ(queued, 5);
  expect_error([&] { qp->release(req[2].slot); }, Errc::invalid_argument, "release of a slot it does not hold");
  qp->ring();
  while (qp->in_flight()) qp->poll();
  EXPECT_EQ(plain, 9);
}

TEST(Driver, HeldSlotTimesOutAndComesBackAfterReset) {
  Rig r(small_config());
  auto qp = r.ctrl->create_queue_pair({.depth = 4, .timeout = 150ms});
  auto buf = r.ctrl->dma()->alloc(4096, 4096);
  HeldReq x;
  x.qp = qp.get();
  x.slot = qp->hold(held_cb, &x);
  x.sqe = held_read(buf, 0, 7);
  r.dev.faults().drop_completions(1, {.opcode = nvm::READ, .qid = qp->qid()});
  ASSERT_TRUE(qp->submit_held(x.slot, x.sqe));
  qp->ring();
  auto t0 = std::chrono::steady_clock::now();
  while (x.calls == 0 && std::chrono::steady_clock::now() - t0 < 5s) qp->poll<&held_cb>();
  EXPECT_EQ(x.calls, 1);
  EXPECT_EQ(x.last_host, HostStatus::timeout);
  // The device may still DMA into the command's buffer: the slot is not reused.
  EXPECT_FALSE(qp->submit_held(x.slot, x.sqe));
  EXPECT_EQ(qp->in_flight(), 1u);
  EXPECT_EQ(qp->stats().timeouts, 1u);
  // Holding takes slots off the free stack: 3 slots, 1 held, so 2 more can be held.
  qp->hold(held_cb, &x);
  qp->hold(held_cb, &x);
  expect_error([&] { qp->hold(held_cb, &x); }, Errc::no_memory, "no free command slot to hold");
  // A reset re-creates the queues: the slot is the holder's again, and works.
  r.ctrl->reset();
  EXPECT_EQ(qp->in_flight(), 0u);
  ASSERT_TRUE(qp->submit_held(x.slot, x.sqe));
  qp->ring();
  t0 = std::chrono::steady_clock::now();
  while (x.calls == 1 && std::chrono::steady_clock::now() - t0 < 5s) qp->poll();
  EXPECT_EQ(x.calls, 2);
  EXPECT_EQ(x.errors, 1);
  EXPECT_EQ(x.last_host, HostStatus::none);
}
