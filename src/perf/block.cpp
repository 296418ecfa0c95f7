// The block workload's thread loop, once for every backend (backends/queue.hpp): qd
// requests in flight per lane (a backend queue and its slots: one queue pair per device
// for unvme, one ring per thread for io_uring, one slot per device for psync). Each
// completion counts its I/O and resubmits the same slot at a new block at once; after
// each lane's reap one flush() covers the batch (unvme: one SQ tail doorbell write;
// io_uring: io_uring_submit_and_wait).
//
// unvme: each slot's SQE, PRPs included, is built once; per I/O only the opcode (mixed
// workloads) and the SLBA change. No allocation, lock, system call or virtual call per
// I/O: the loop and handler are templates on the backend and on the options that matter
// (latency sampling, mixed reads/writes, prebuilt DPTR, random offsets). Evidence:
// bench/results/driver-cost/callgrind-qd128-flat.txt lists every function the thread
// ran in the measured window.
#include <fmt/format.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <deque>
#include <optional>

#include "backends/buffer.hpp"
#include "backends/psync.hpp"
#include "backends/registry.hpp"
#include "backends/tcp.hpp"
#include "backends/unvme.hpp"
#include "backends/uring.hpp"
#include "common/error.hpp"
#include "nvme/data_pointer.hpp"
#include "perf/engines.hpp"

namespace aisio::perf {

Region make_region(const SharedOptions& o, uint64_t offset, const std::string& dev, uint64_t capacity,
                   uint32_t lba_size) {
  if (lba_size == 0) throw Error(Errc::invalid_argument, dev + ": block size 0");
  if (o.bs % lba_size)
    throw Error(Errc::invalid_argument,
                fmt::format("{}: --bs {} is not a multiple of the {}-byte block size", dev, o.bs, lba_size));
  if (offset % lba_size)
    throw Error(Errc::invalid_argument,
                fmt::format("{}: --offset {} is not a multiple of the {}-byte block size", dev, offset, lba_size));
  if (offset >= capacity)
    throw Error(Errc::invalid_argument, fmt::format("{}: --offset {} is beyond its {} bytes", dev, offset, capacity));
  uint64_t len = o.size ? o.size : capacity - offset;
  if (len > capacity - offset)
    throw Error(Errc::invalid_argument,
                fmt::format("{}: region [{}, +{}) exceeds its {} bytes", dev, offset, len, capacity));
  Region r{offset, len / o.bs};
  if (r.blocks == 0) throw Error(Errc::invalid_argument, fmt::format("{}: region is smaller than --bs", dev));
  return r;
}

namespace {

using backends::PsyncQueue;
using backends::TcpQueue;
using backends::UnvmeQueue;
using backends::UringQueue;
using nvme::Completion;

// One device as one thread sees it.
struct Dev {
  std::string name;
  BlockGen gen;
  uint64_t region = 0;  // unvme: first LBA; kernel backends: first byte
  uint32_t nlb = 0;     // unvme: blocks per I/O
  uint32_t nsid = 1;
  DmaBuffer data;       // unvme: qd bs-sized buffers
  DmaBuffer lists;      // unvme: prebuilt PRP lists
  // unvme: the device's own queue pair, here so that a slot reaches it through the
  // device it already loads (one load fewer per I/O). Last: it goes before the buffers.
  std::optional<UnvmeQueue> uq;
};

// One request in flight, resubmitted from its own completion. The direction is the
// request's op (Q::Request).
template <class Q>
struct alignas(64) Slot : Q::Request {
  Q* q;
  Dev* dev;
  ThreadCtx* t;
  uint64_t t0;    // TSC at submission when sampled, else 0
  uint64_t lba;   // unvme submit_io path only (the prebuilt path keeps it in the SQE)
  uint32_t buf_off;
};

// A backend queue and the slots it carries.
template <class Q>
struct Lane {
  Q* q = nullptr;
  std::vector<Slot<Q>> slots;
};

constexpr uint8_t kOpc[2] = {nvme::nvm::READ, nvme::nvm::WRITE};
constexpr double kDrainLimitNs = 35e9;  // the driver's default I/O timeout (30 s) + 5 s

// ---- what differs per backend: where an I/O goes, what a good result is ----------------

inline bool ok(const Slot<UnvmeQueue>&, const Completion& c) { return c.ok(); }
template <class Q>
inline bool ok(const Slot<Q>& s, int64_t res) {
  return res == int64_t(s.len);
}

[[gnu::cold, gnu::noinline]] void unvme_failed(Slot<UnvmeQueue>& s, uint16_t status, uint32_t dw0,
                                               nvme::HostStatus host) {
  const Completion c{nvme::Status(status), dw0, host};
  Dev& d = *s.dev;
  uint64_t lba = s.lba ? s.lba : (uint64_t(s.sqe.cdw11) << 32 | s.sqe.cdw10);
  s.t->fail(fmt::format("{} on {} nsid {} {} lba {} ({} blocks)", c.describe(), d.name, d.nsid,
                        s.op ? "write" : "read", lba, d.nlb));
}
// The fields as scalars: a Completion passed by value to a function that is not inlined
// made the compiler build it on the stack on every I/O, failed or not.
[[gnu::always_inline]] inline void io_failed(Slot<UnvmeQueue>& s, const Completion& c) {
  unvme_failed(s, c.status.field, c.dw0, c.host);
}
// "DEV read of 4096 bytes at offset 8192: Input/output error" (res < 0), or a short transfer.
template <class Q>
[[gnu::cold, gnu::noinline]] void io_failed(Slot<Q>& s, int64_t res) {
  s.t->fail(fmt::format("{} {} of {} bytes at offset {}: {}", s.dev->name, s.op == backends::kWrite ? "write" : "read",
                        s.len, s.off,
                        res < 0 ? std::strerror(int(-res)) : fmt::format("short transfer ({} bytes)", res)));
}

[[gnu::cold, gnu::noinline]] void no_slot(Slot<UnvmeQueue>& s) {
  s.t->fail(fmt::format("{}: queue pair {} had no free command slot", s.dev->name, s.q->queue_pair().qid()));
}

template <bool kMixed, bool kPre, class H>
[[gnu::always_inline]] inline void place(Slot<UnvmeQueue>& s, uint64_t idx) {
  Dev& d = *s.dev;
  uint64_t lba = d.region + idx * d.nlb;
  if constexpr (kPre) {
    if constexpr (kMixed) s.sqe.opc = kOpc[s.op];
    // SLBA is CDW10 (low) and CDW11 (high), adjacent: one 64-bit store (little endian).
    static_assert(offsetof(nvme::Sqe, cdw11) == offsetof(nvme::Sqe, cdw10) + 4 &&
                  __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__);
    std::memcpy(reinterpret_cast<char*>(&s.sqe) + offsetof(nvme::Sqe, cdw10), &lba, sizeof lba);
    // Each slot holds a command slot of the queue pair (Hot::loop): fails only while
    // the slot's previous command timed out and has not ended, after the run failed.
    if (!d.uq->template submit_held<H>(s)) [[unlikely]]
      no_slot(s);
  } else {
    s.lba = lba;
    if (!d.uq->template submit_io<H>(s, s.op, lba, d.nlb, d.data, s.buf_off)) [[unlikely]]
      no_slot(s);
  }
}
template <bool, bool, class H, class Q>
[[gnu::always_inline]] inline void place(Slot<Q>& s, uint64_t idx) {
  s.off = s.dev->region + idx * s.len;
  s.q->template submit<H>(s);
}

// ---- the loop ---------------------------------------------------------------------------

template <class Q, bool kLat, bool kMixed, bool kPre, bool kRand>
struct Hot {
  static void issue(Slot<Q>& s) {
    ThreadCtx& t = *s.t;
    Dev& d = *s.dev;
    uint64_t idx;
    if constexpr (kRand) idx = d.gen.lcg().below(d.gen.blocks());
    else idx = d.gen.next();
    if constexpr (kMixed) s.op = t.pick_op();
    if constexpr (kLat) s.t0 = t.sample() ? rdtsc() : 0;
    place<kMixed, kPre, Hot>(s, idx);
  }

  // Called by the backend for each completion (for unvme from QueuePair::poll).
  static void done(typename Q::Request& r, const typename Q::Result& res) {
    Slot<Q>& s = static_cast<Slot<Q>&>(r);
    if (!ok(s, res)) [[unlikely]] return io_failed(s, res);
    ThreadCtx& t = *s.t;
    if constexpr (kLat) {
      if (s.t0) [[unlikely]] t.record(s.op, s.t0);
    }
    ++t.done[s.op];
    // Resubmitted from the completion, which every backend allows (it must not reap);
    // the loop flushes once per pass. remaining is <= 0 after a stop, an error or --ios.
    if (--t.remaining >= 0) [[likely]] issue(s);
  }

  static void loop(std::vector<Lane<Q>*>& lanes, ThreadCtx& t) {
    Lane<Q>* const* lv = lanes.data();
    const size_t n = lanes.size();
    // unvme, prebuilt SQEs: each slot keeps one command slot of its queue pair for the
    // run, so a resubmission touches no free stack and stores no callback.
    if constexpr (std::is_same_v<Q, UnvmeQueue> && kPre) {
      for (size_t i = 0; i < n; ++i)
        for (auto& s : lv[i]->slots) lv[i]->q->template hold<Hot>(s);
    }
    // Fill: qd requests per lane (fewer when --ios is smaller).
    for (size_t i = 0; i < n; ++i) {
      for (auto& s : lv[i]->slots) {
        if (t.remaining <= 0) break;
        --t.remaining;
        issue(s);
      }
      if (!flushed(lv[i]->q->flush(), t)) return;
    }
    uint64_t drain_start = 0;
    for (;;) {
      uint32_t got = 0;
      for (size_t i = 0; i < n; ++i) {
        Q& q = *lv[i]->q;
        got += q.template reap<Hot>();
        if (!flushed(q.flush(), t)) [[unlikely]] return;  // unvme: no-op when nothing was resubmitted
      }
      t.idle_loops += got == 0;  // passes that found nothing (the device is behind)
      t.tick();
      if (t.remaining <= 0) [[unlikely]] {
        uint32_t busy = 0;
        for (size_t i = 0; i < n; ++i) busy += lv[i]->q->in_flight();
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

  // A failed io_uring_enter ends the run (what is in flight ends with the ring).
  [[gnu::always_inline]] static bool flushed(int r, ThreadCtx& t) {
    if (r >= 0 || r == -EINTR || r == -EAGAIN || r == -EBUSY) [[likely]] return true;
    return flush_failed(r, t);
  }
  [[gnu::cold, gnu::noinline]] static bool flush_failed(int r, ThreadCtx& t) {
    t.fail(fmt::format("io_uring_enter: {}", std::strerror(-r)));
    return false;
  }
};

template <class Q>
class BlockWorker final : public Worker {
 public:
  explicit BlockWorker(const PerfOptions& o) : o_(o) {}
  ~BlockWorker() override {
    lanes_.clear();
    queues_.clear();  // queues (Delete I/O SQ/CQ) before their buffers
  }

  void run(ThreadCtx& t) override {
    std::vector<Lane<Q>*> lv;
    for (auto& l : lanes_) {
      for (auto& s : l.slots) s.t = &t;
      lv.push_back(&l);
    }
    t.begin();
    dispatch<>(lv, t, o_.lat, rw_mixed(o_.rw), pre_, rw_random(o_.rw));
    t.end();
  }

  // count slots on lane l for device d; kernel backends: over the buffer at base.
  void add_slots(Lane<Q>& l, Dev& d, uint32_t count, uint8_t* base) {
    const uint8_t fixed = read_percent(o_.rw, o_.rwmix) == 0 ? 1 : 0;
    for (uint32_t i = 0; i < count; ++i) {
      Slot<Q>& s = l.slots.emplace_back();
      s.q = l.q;
      s.dev = &d;
      s.t = nullptr;
      s.t0 = 0;
      s.lba = 0;
      s.buf_off = i * o_.bs;
      s.op = fixed;
      if constexpr (!std::is_same_v<Q, UnvmeQueue>) {
        s.buf = base + size_t(i) * o_.bs;
        s.len = o_.bs;
      }
    }
  }
  // Device d as thread `thread` sees it: its region (make_region) and generator; region
  // in bytes.
  Dev& add_dev(const std::string& name, uint64_t capacity, uint32_t lba_size, uint32_t thread, uint32_t d) {
    const Region r = make_region(o_, o_.offset, name, capacity, lba_size);
    Dev& dev = devs_.emplace_back();
    dev.name = name;
    dev.gen = BlockGen(rw_random(o_.rw), r.blocks, seq_start(r, thread, o_.threads), lba_seed(o_, thread, d));
    dev.region = r.start;
    return dev;
  }

  const PerfOptions& o_;
  bool pre_ = false;
  std::deque<Dev> devs_;  // deques: slots point into them
  std::deque<Lane<Q>> lanes_;
  std::deque<Q> queues_;  // kernel backends (unvme: in devs_)
  std::vector<backends::AlignedBuffer> bufs_;

 private:
  // 16 instantiations per backend: the per-I/O path carries no test for these options.
  template <bool... kFlags, class... Rest>
  static void dispatch(std::vector<Lane<Q>*>& lv, ThreadCtx& t, bool f, Rest... rest) {
    if (f) dispatch<kFlags..., true>(lv, t, rest...);
    else dispatch<kFlags..., false>(lv, t, rest...);
  }
  template <bool... kFlags>
  static void dispatch(std::vector<Lane<Q>*>& lv, ThreadCtx& t) {
    Hot<Q, kFlags...>::loop(lv, t);
  }
};

}  // namespace

std::unique_ptr<Worker> make_unvme_worker(const PerfOptions& o, const std::vector<backends::UnvmeTarget>& devs,
                                          uint32_t thread, const backends::GpuBackends* gpu) {
  auto w = std::make_unique<BlockWorker<UnvmeQueue>>(o);
  // Prebuilt SQEs need one command per I/O on every device (bs <= MDTS).
  w->pre_ = o.prebuilt_dptr;
  for (auto& ud : devs)
    if (o.bs > ud.max_command_bytes()) w->pre_ = false;
  for (uint32_t di = 0; di < devs.size(); ++di) {
    auto& ud = devs[di];
    Dev& d = w->add_dev(ud.describe, ud.ns_bytes, ud.lba_size, thread, di);
    d.region /= ud.lba_size;  // in LBAs
    d.nlb = o.bs / ud.lba_size;
    d.nsid = ud.nsid;

    size_t limit = ud.max_command_bytes();
    uint32_t pieces = uint32_t((o.bs + limit - 1) / limit);
    uint64_t depth = uint64_t(o.qd) * pieces + 1;
    ud.check_queue_entries(o.qd, depth);
    d.uq.emplace(ud, uint32_t(depth));
    Lane<UnvmeQueue>& l = w->lanes_.emplace_back();
    l.q = &*d.uq;

    // Data: one bs-sized buffer per slot (reads of several slots never share bytes);
    // --mem gpu: in GPU memory (P2P), through the same PRP building. PRP lists and
    // queues stay in the controller's host DMA memory.
    const uint32_t page = ud.page_size;
    if (o.mem == MemKind::gpu && (!gpu || !ud.ctrl))
      throw Error(Errc::not_supported, ud.describe + ": --mem gpu needs the CUDA build and a controller of this process");
    auto data_heap = o.mem == MemKind::gpu ? gpu->data_heap(ud.ctrl) : ud.dma;
    d.data = data_heap->alloc(size_t(o.qd) * o.bs, page);
    uint32_t list_pages = 0;
    if (w->pre_ && o.bs > 2 * page) {  // PRP lists: built once per slot
      uint64_t entries = o.bs / page + 1, per = page / 8 - 1;
      list_pages = uint32_t((entries + per - 1) / per);
      d.lists = ud.dma->alloc(size_t(o.qd) * list_pages * page, page);
    }
    w->add_slots(l, d, o.qd, nullptr);
    for (uint32_t i = 0; i < o.qd; ++i) {
      auto& s = l.slots[i];
      s.sqe = nvme::cmd::rw(kOpc[s.op], ud.nsid, 0, d.nlb);
      if (w->pre_) {
        nvme::ListSpace ls{&d.lists, size_t(i) * list_pages * page, list_pages};
        auto res = nvme::build_prp(s.sqe, d.data, s.buf_off, o.bs, 31 - __builtin_clz(page), ls);
        if (res != nvme::DptrResult::ok) throw Error(Errc::invalid_argument, ud.describe + ": cannot build PRPs");
      }
    }
  }
  return w;
}

std::unique_ptr<Worker> make_uring_worker(const PerfOptions& o, const std::vector<KernelDevice>& devs,
                                          uint32_t thread) {
  auto w = std::make_unique<BlockWorker<UringQueue>>(o);
  // One ring for the thread's devices: qd requests in flight per device.
  const uint32_t slots = o.qd * uint32_t(devs.size());
  auto& l = w->lanes_.emplace_back();
  l.q = &w->queues_.emplace_back(backends::UringOptions{slots, o.hipri, o.sqpoll, !o.sqpoll});
  auto& buf = w->bufs_.emplace_back(size_t(slots) * o.bs, backends::AlignedBuffer::pattern);
  std::vector<int> fds;
  for (auto& d : devs) fds.push_back(d.fd);
  if (o.fixed_bufs) {
    l.q->register_files(fds);
    l.q->register_buffer(buf.data(), buf.size());
  }
  for (uint32_t di = 0; di < devs.size(); ++di) {
    Dev& d = w->add_dev(devs[di].name, devs[di].capacity, devs[di].lba_size, thread, di);
    size_t first = l.slots.size();
    w->add_slots(l, d, o.qd, buf.data() + size_t(di) * o.qd * o.bs);
    for (size_t i = first; i < l.slots.size(); ++i) {
      auto& s = l.slots[i];
      s.fd = devs[di].fd;
      if (o.fixed_bufs) {
        s.file_index = int(di);
        s.fixed_buf = true;
      }
    }
  }
  return w;
}

std::unique_ptr<Worker> make_tcp_worker(const PerfOptions& o, const std::vector<backends::TcpTarget>& devs,
                                        uint32_t thread) {
  auto w = std::make_unique<BlockWorker<TcpQueue>>(o);
  // One queue (one TCP connection) per device, with qd requests over its own buffers.
  for (uint32_t di = 0; di < devs.size(); ++di) {
    auto& td = devs[di];
    if (o.bs % td.lba_size || o.bs > td.max_command_bytes())
      throw Error(Errc::invalid_argument, fmt::format("{}: --bs {} must be whole {}-byte blocks, at most {} (MDTS)",
                                                      td.describe, o.bs, td.lba_size, td.max_command_bytes()));
    td.check_queue_entries(o.qd, o.qd + 1);
    Dev& d = w->add_dev(td.describe, td.ns_bytes, td.lba_size, thread, di);
    d.nsid = td.nsid;
    auto& l = w->lanes_.emplace_back();
    l.q = &w->queues_.emplace_back(td, o.qd + 1);
    auto& buf = w->bufs_.emplace_back(size_t(o.qd) * o.bs, backends::AlignedBuffer::pattern);
    w->add_slots(l, d, o.qd, buf.data());
  }
  return w;
}

std::unique_ptr<Worker> make_psync_worker(const PerfOptions& o, const std::vector<KernelDevice>& devs,
                                          uint32_t thread) {
  auto w = std::make_unique<BlockWorker<PsyncQueue>>(o);
  // One synchronous request per device, taken in turn; one buffer for all.
  auto& buf = w->bufs_.emplace_back(o.bs, backends::AlignedBuffer::pattern);
  for (uint32_t di = 0; di < devs.size(); ++di) {
    Dev& d = w->add_dev(devs[di].name, devs[di].capacity, devs[di].lba_size, thread, di);
    auto& l = w->lanes_.emplace_back();
    l.q = &w->queues_.emplace_back();
    w->add_slots(l, d, 1, buf.data());
    l.slots[0].fd = devs[di].fd;
  }
  return w;
}

}  // namespace aisio::perf
