// The unvme engine: our user-space driver, one queue pair per (thread, device).
//
// Per thread: qd commands in flight per device. The completion callback (a plain
// function pointer, called from QueuePair::poll) counts the I/O and resubmits the
// same slot at a new LBA at once (its command id was freed just before the call);
// after each device's poll one ring() writes the SQ tail doorbell for the whole batch.
// Each slot's SQE, PRPs included, is built once; per I/O only the opcode (mixed
// workloads) and the SLBA change. No allocation, lock, system call or virtual call
// per I/O: the loop and callback are templates on the options that matter (latency
// sampling, mixed reads/writes, prebuilt DPTR). Evidence:
// bench/results/driver-cost/callgrind-qd128-flat.txt lists every function the thread
// ran in the measured window.
#include <fmt/format.h>

#include "common/error.hpp"
#include "nvme/data_pointer.hpp"
#include "perf/engines.hpp"
#include "perf/gpu_hook.hpp"

namespace aisio::perf {

Region make_region(const PerfOptions& o, const std::string& dev, uint64_t capacity, uint32_t lba_size) {
  if (lba_size == 0) throw Error(Errc::invalid_argument, dev + ": block size 0");
  if (o.bs % lba_size)
    throw Error(Errc::invalid_argument,
                fmt::format("{}: --bs {} is not a multiple of the {}-byte block size", dev, o.bs, lba_size));
  if (o.offset % lba_size)
    throw Error(Errc::invalid_argument,
                fmt::format("{}: --offset {} is not a multiple of the {}-byte block size", dev, o.offset, lba_size));
  if (o.offset >= capacity)
    throw Error(Errc::invalid_argument, fmt::format("{}: --offset {} is beyond its {} bytes", dev, o.offset, capacity));
  uint64_t len = o.size ? o.size : capacity - o.offset;
  if (len > capacity - o.offset)
    throw Error(Errc::invalid_argument,
                fmt::format("{}: region [{}, +{}) exceeds its {} bytes", dev, o.offset, len, capacity));
  Region r{o.offset, len / o.bs};
  if (r.blocks == 0) throw Error(Errc::invalid_argument, fmt::format("{}: region is smaller than --bs", dev));
  return r;
}

namespace {

using nvme::Completion;
using nvme::QueuePair;
using nvme::Sqe;

struct Dev;

struct alignas(64) Slot {
  Sqe sqe;        // prebuilt: NSID, NLB, PRPs; opcode and SLBA set per I/O
  Dev* dev;
  ThreadCtx* t;
  uint64_t t0;    // TSC at submission when sampled, else 0
  uint64_t lba;   // submit_io path only (the prebuilt path keeps it in the SQE)
  uint32_t buf_off;
  uint8_t op;     // 0 read, 1 write
};

struct Dev {
  QueuePair* qp = nullptr;
  BlockGen gen;
  uint64_t region_lba = 0;
  uint32_t nlb = 0;     // blocks per I/O
  uint32_t nsid = 1;
  std::string name;
  std::unique_ptr<QueuePair> qp_owner;
  DmaBuffer data;
  DmaBuffer lists;
  std::vector<Slot> slots;
};

constexpr uint8_t kOpc[2] = {nvme::nvm::READ, nvme::nvm::WRITE};
constexpr double kDrainLimitNs = 35e9;  // the driver's default I/O timeout (30 s) + 5 s

[[gnu::cold, gnu::noinline]] void io_failed(Slot& s, Completion c) {
  Dev& d = *s.dev;
  uint64_t lba = s.lba ? s.lba : (uint64_t(s.sqe.cdw11) << 32 | s.sqe.cdw10);
  s.t->fail(fmt::format("{} on {} nsid {} {} lba {} ({} blocks)", c.describe(), d.name, d.nsid,
                        s.op ? "write" : "read", lba, d.nlb));
}

[[gnu::cold, gnu::noinline]] void no_slot(ThreadCtx& t, Dev& d) {
  t.fail(fmt::format("{}: queue pair {} had no free command slot", d.name, d.qp->qid()));
}

template <bool kLat, bool kMixed, bool kPre, bool kRand>
struct Hot {
  static void issue(Dev& d, Slot& s) {
    ThreadCtx& t = *s.t;
    uint64_t idx;
    if constexpr (kRand) idx = d.gen.lcg().below(d.gen.blocks());
    else idx = d.gen.next();
    uint64_t lba = d.region_lba + idx * d.nlb;
    if constexpr (kMixed) s.op = t.pick_op();
    if constexpr (kLat) s.t0 = t.sample() ? rdtsc() : 0;
    if constexpr (kPre) {
      if constexpr (kMixed) s.sqe.opc = kOpc[s.op];
      s.sqe.cdw10 = uint32_t(lba);
      s.sqe.cdw11 = uint32_t(lba >> 32);
      // Cannot fail: each slot has one command, and the queue holds qd of them.
      d.qp->submit(s.sqe, &done, &s);
    } else {
      s.lba = lba;
      if (!d.qp->submit_io(kOpc[s.op], d.nsid, lba, d.nlb, d.data, s.buf_off, &done, &s)) [[unlikely]]
        no_slot(t, d);
    }
  }

  // Called from QueuePair::poll for each completion.
  static void done(void* arg, Completion c) {
    Slot& s = *static_cast<Slot*>(arg);
    if (!c.ok()) [[unlikely]] return io_failed(s, c);
    ThreadCtx& t = *s.t;
    if constexpr (kLat) {
      if (s.t0) [[unlikely]] t.record(s.op, s.t0);
    }
    ++t.done[s.op];
    // Resubmitted from the callback, which QueuePair allows (it must not poll); the
    // loop rings once per poll. remaining is 0 after a stop, an error or --ios.
    if (t.remaining) [[likely]] {
      --t.remaining;
      issue(*s.dev, s);
    }
  }

  static void loop(std::vector<Dev*>& devs, ThreadCtx& t) {
    Dev* const* dv = devs.data();
    const size_t n = devs.size();
    // Fill: qd commands per device (fewer when --ios is smaller).
    for (size_t i = 0; i < n; ++i) {
      for (auto& s : dv[i]->slots) {
        if (t.remaining == 0) break;
        --t.remaining;
        issue(*dv[i], s);
      }
      dv[i]->qp->ring();
    }
    uint64_t drain_start = 0;
    for (;;) {
      uint32_t got = 0;
      for (size_t i = 0; i < n; ++i) {
        Dev& d = *dv[i];
        QueuePair* qp = d.qp;
        got += qp->poll();
        qp->ring();  // no-op when nothing was resubmitted
      }
      t.idle_loops += got == 0;  // passes that found nothing (the device is behind)
      t.tick();
      if (t.remaining == 0) [[unlikely]] {
        uint32_t busy = 0;
        for (size_t i = 0; i < n; ++i) busy += dv[i]->qp->in_flight();
        if (busy == 0) break;
        // Commands that timed out stay in flight until their CQE comes (or never):
        // give up on them after the driver's own timeout and a margin.
        if (!drain_start) {
          drain_start = rdtsc();
        } else if (double(rdtsc() - drain_start) * t.ns_per_tick > kDrainLimitNs) {
          t.fail(fmt::format("{} command(s) still outstanding {} s after the run stopped", busy,
                             kDrainLimitNs / 1e9));
          break;
        }
      }
    }
  }
};

class UnvmeWorker final : public Worker {
 public:
  UnvmeWorker(const PerfOptions& o, const std::vector<UnvmeDevice>& devs, uint32_t thread) : o_(o) {
    const uint8_t fixed = read_percent(o.rw, o.rwmix) == 0 ? 1 : 0;
    // Prebuilt SQEs need one command per I/O on every device (bs <= MDTS).
    pre_ = o.prebuilt_dptr;
    for (auto& ud : devs) {
      size_t limit = ud.target->max_transfer() ? ud.target->max_transfer() : size_t(1) << 20;
      if (o.bs > limit) pre_ = false;
    }
    for (uint32_t di = 0; di < devs.size(); ++di) {
      auto& ud = devs[di];
      auto& tgt = *ud.target;
      const auto ns = tgt.ns(ud.nsid);
      auto d = std::make_unique<Dev>();
      d->name = ud.name;
      d->nsid = ud.nsid;
      Region r = make_region(o, ud.name, ns.bytes(), ns.lba_size);
      d->region_lba = r.start / ns.lba_size;
      d->nlb = o.bs / ns.lba_size;
      d->gen = BlockGen(rw_random(o.rw), r.blocks, seq_start(r, thread, o.threads), lba_seed(o, thread, di));

      size_t limit = tgt.max_transfer() ? tgt.max_transfer() : size_t(1) << 20;
      uint32_t pieces = uint32_t((o.bs + limit - 1) / limit);
      uint64_t depth = uint64_t(o.qd) * pieces + 1;
      uint64_t max_depth = tgt.max_queue_entries();
      if (depth > max_depth)
        throw Error(Errc::invalid_argument,
                    fmt::format("{}: --qd {} needs a queue of {} entries; the controller allows {} (CAP.MQES)",
                                ud.name, o.qd, depth, max_depth));
      nvme::QueueOptions qo;
      qo.depth = uint32_t(depth);
      d->qp_owner = tgt.create_queue_pair(qo, ud.nsid);
      d->qp = d->qp_owner.get();

      // Data: one bs-sized buffer per slot (reads of several slots never share bytes);
      // --mem gpu: in GPU memory (P2P), through the same PRP building. PRP lists and
      // queues stay in the controller's host DMA memory.
      const uint32_t page = tgt.page_size();
      if (o.mem == MemKind::gpu && !tgt.controller())
        throw Error(Errc::not_supported, ud.name + ": --mem gpu needs a controller this process drives");
      auto data_heap = o.mem == MemKind::gpu ? gpu_heap_factory()(tgt.controller()) : tgt.dma();
      d->data = data_heap->alloc(size_t(o.qd) * o.bs, page);
      uint32_t list_pages = 0;
      if (pre_ && o.bs > 2 * page) {  // PRP lists: built once per slot
        uint64_t entries = o.bs / page + 1, per = page / 8 - 1;
        list_pages = uint32_t((entries + per - 1) / per);
        d->lists = tgt.dma()->alloc(size_t(o.qd) * list_pages * page, page);
      }
      d->slots.resize(o.qd);
      for (uint32_t i = 0; i < o.qd; ++i) {
        Slot& s = d->slots[i];
        s.dev = d.get();
        s.t = nullptr;
        s.t0 = 0;
        s.lba = 0;
        s.buf_off = i * o.bs;
        s.op = fixed;
        s.sqe = nvme::cmd::rw(kOpc[fixed], ud.nsid, 0, d->nlb);
        if (pre_) {
          nvme::ListSpace ls{&d->lists, size_t(i) * list_pages * page, list_pages};
          auto res = nvme::build_prp(s.sqe, d->data, s.buf_off, o.bs, 31 - __builtin_clz(page), ls);
          if (res != nvme::DptrResult::ok) throw Error(Errc::invalid_argument, ud.name + ": cannot build PRPs");
        }
      }
      devs_.push_back(std::move(d));
    }
  }

  void run(ThreadCtx& t) override {
    std::vector<Dev*> dv;
    for (auto& d : devs_) {
      for (auto& s : d->slots) s.t = &t;
      dv.push_back(d.get());
    }
    t.begin();
    dispatch<>(dv, t, o_.lat, rw_mixed(o_.rw), pre_, rw_random(o_.rw));
    t.end();
  }

  // 16 instantiations: the per-I/O path carries no test for these options.
  template <bool... kFlags, class... Rest>
  static void dispatch(std::vector<Dev*>& dv, ThreadCtx& t, bool f, Rest... rest) {
    if (f) dispatch<kFlags..., true>(dv, t, rest...);
    else dispatch<kFlags..., false>(dv, t, rest...);
  }
  template <bool... kFlags>
  static void dispatch(std::vector<Dev*>& dv, ThreadCtx& t) {
    Hot<kFlags...>::loop(dv, t);
  }

  ~UnvmeWorker() override {
    for (auto& d : devs_) d->qp_owner.reset();  // queues (Delete I/O SQ/CQ) before their buffers
  }

 private:
  const PerfOptions& o_;
  bool pre_ = true;
  std::vector<std::unique_ptr<Dev>> devs_;
};

}  // namespace

std::unique_ptr<Worker> make_unvme_worker(const PerfOptions& o, const std::vector<UnvmeDevice>& devs,
                                          uint32_t thread) {
  return std::make_unique<UnvmeWorker>(o, devs, thread);
}

}  // namespace aisio::perf
