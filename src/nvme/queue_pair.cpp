#include "nvme/queue_pair.hpp"

#include <cstring>
#include <thread>

#include "common/error.hpp"
#include "nvme/barrier.hpp"
#include "nvme/controller.hpp"
#include "nvme/ticks.hpp"

namespace aisio::nvme {

QueuePair::QueuePair(QueueOwner* owner, uint16_t qid, const QueueOptions& opt, QueueGeometry geo)
    : owner_(owner),
      qid_(qid),
      depth_(opt.depth),
      max_transfer_(geo.max_transfer),
      page_shift_(geo.page_shift),
      use_sgl_(opt.use_sgl),
      lba_size_(std::move(geo.lba_size)) {
  auto timeout = opt.timeout;
  if (timeout.count() <= 0) throw Error(Errc::invalid_argument, "queue pair without a command timeout");
  // Scan for expired commands a few times per timeout, at most every 10 ms (an MMIO
  // read of CSTS rides along). Commands carry the scan epoch, not a time: see tick().
  auto scan = std::max<std::chrono::nanoseconds>(
      std::min<std::chrono::nanoseconds>(timeout / 4, std::chrono::milliseconds(10)), std::chrono::microseconds(1));
  scan_ticks_ = ticks_from(scan);
  timeout_scans_ = uint32_t((timeout + scan - std::chrono::nanoseconds(1)) / scan);
}

void QueuePair::allocate(DmaHeap& dma) {
  const size_t page = size_t(1) << page_shift_;
  sq_mem_ = dma.alloc(size_t(depth_) * sizeof(Sqe), page);
  cq_mem_ = dma.alloc(size_t(depth_) * sizeof(Cqe), page);
  sq_ = sq_mem_.as<Sqe>();
  cq_ = cq_mem_.as<volatile Cqe>();
  // List space per command: a transfer of max_transfer bytes starting mid-page spans
  // max_transfer/page + 1 pages; each list page holds page/8 - 1 entries and a chain.
  uint64_t entries = max_transfer_ / page + 1;
  uint64_t per_list = page / 8 - 1;
  list_pages_ = uint32_t((entries + per_list - 1) / per_list);
  if (use_sgl_) {  // one descriptor per bus-contiguous run: at worst one per memory page
    uint64_t sgl_pages = (entries * sizeof(SglDescriptor) + page - 1) / page;
    list_pages_ = std::max<uint32_t>(list_pages_, uint32_t(sgl_pages));
  }
  lists_mem_ = dma.alloc(size_t(capacity()) * list_pages_ * page, page);

  slots_.assign(depth_, Slot{nullptr, nullptr, 0, kFree, 0});
  for (uint32_t i = 0; i < depth_; ++i) slots_[i].cid = uint16_t(i);
  held_ = 0;
  free_.resize(capacity());
  splits_.resize(capacity());
  free_splits_.resize(capacity());
  reset_state();
}

std::unique_ptr<QueuePair> QueuePair::detached(QueueOwner* owner, std::shared_ptr<void> keep, const QueueOptions& opt,
                                               QueueGeometry geo, DmaHeap& dma) {
  if (opt.depth < 2 || opt.depth > 65536) throw Error(Errc::invalid_argument, "queue depth outside 2..65536");
  std::unique_ptr<QueuePair> qp(new QueuePair(owner, 0, opt, std::move(geo)));
  qp->allocate(dma);
  qp->keep_ = std::move(keep);
  return qp;
}

void QueuePair::bind(uint16_t qid, volatile uint32_t* sq_doorbell, volatile uint32_t* cq_doorbell) {
  qid_ = qid;
  sq_db_ = sq_doorbell;
  cq_db_ = cq_doorbell;
}

void QueuePair::reset_state() {
  std::memset(sq_mem_.data(), 0, sq_mem_.size());
  std::memset(cq_mem_.data(), 0, cq_mem_.size());
  sq_tail_ = sq_tail_rung_ = cq_head_ = 0;
  phase_ = 1;  // the controller's first pass writes phase 1 over zeroed entries
  nfree_ = 0;
  for (uint32_t i = capacity(); i-- > 0;) {
    // Nothing is outstanding on fresh queues; held slots stay with their holders.
    if (slots_[i].state & kHeld) {
      slots_[i].state = kHeld;
      continue;
    }
    slots_[i].state = kFree;
    free_[nfree_++] = uint16_t(i);
  }
  free_splits_.resize(capacity());
  for (uint32_t i = 0; i < capacity(); ++i) free_splits_[i] = capacity() - 1 - i;
  last_scan_ = ticks();
}

QueuePair::~QueuePair() {
  if (owner_) owner_->release_queue(*this);
}

bool QueuePair::submit(Sqe sqe, const DmaBuffer& buf, size_t off, size_t len, IoCallback cb, void* arg) {
  if (nfree_ == 0) return false;
  if (off + len > buf.size() || off + len < off)
    throw Error(Errc::invalid_argument, "data range [" + std::to_string(off) + ", +" + std::to_string(len) +
                                            ") is outside the " + std::to_string(buf.size()) + "-byte buffer");
  if (len > max_transfer_)
    throw Error(Errc::invalid_argument, "transfer of " + std::to_string(len) + " bytes exceeds the queue's " +
                                            std::to_string(max_transfer_) + "-byte limit (MDTS)");
  // The list space of the slot that submit() will pop next.
  uint16_t cid = free_[nfree_ - 1];
  ListSpace lists{&lists_mem_, size_t(cid) * list_pages_ << page_shift_, list_pages_};
  DptrResult r = use_sgl_ ? build_sgl(sqe, buf, off, len, lists) : build_prp(sqe, buf, off, len, page_shift_, lists);
  if (r != DptrResult::ok)
    throw Error(Errc::invalid_argument, r == DptrResult::unaligned
                                            ? "data buffer address is not dword aligned (PRP offset rule)"
                                            : "transfer needs more PRP/SGL list entries than a command slot holds");
  return submit(sqe, cb, arg);
}

void QueuePair::split_done(void* arg, Completion c) {
  auto* sp = static_cast<Split*>(arg);
  if (!c.ok() && sp->result.ok()) sp->result = c;
  if (--sp->remaining == 0) {
    // Return the record to the pool before the callback, which may submit again.
    IoCallback cb = sp->cb;
    void* cb_arg = sp->arg;
    Completion result = sp->result;
    sp->qp->free_splits_.push_back(sp->index);
    cb(cb_arg, result);
  }
}

bool QueuePair::submit_io(uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb, const DmaBuffer& buf,
                          size_t off, IoCallback cb, void* arg) {
  uint32_t lbs = lba_size(nsid);
  if (lbs == 0) throw Error(Errc::invalid_argument, "namespace " + std::to_string(nsid) + " is not active");
  if (nlb == 0) throw Error(Errc::invalid_argument, "I/O of 0 blocks");
  size_t bytes = size_t(nlb) * lbs;
  size_t max_blocks = std::min<size_t>(max_transfer_ / lbs, 65536);  // NLB is 16 bits
  if (nlb <= max_blocks) return submit(cmd::rw(opc, nsid, slba, nlb), buf, off, bytes, cb, arg);

  uint32_t pieces = uint32_t((nlb + max_blocks - 1) / max_blocks);
  if (pieces > nfree_ || free_splits_.empty()) return false;
  if (off + bytes > buf.size()) throw Error(Errc::invalid_argument, "I/O range is outside the data buffer");
  uint32_t si = free_splits_.back();
  free_splits_.pop_back();
  Split& sp = splits_[si];
  sp = Split{cb, arg, pieces, Completion{}, this, si};
  for (uint32_t i = 0; i < pieces; ++i) {
    uint32_t n = uint32_t(std::min<uint64_t>(max_blocks, nlb - uint64_t(i) * max_blocks));
    uint64_t lba = slba + uint64_t(i) * max_blocks;
    submit(cmd::rw(opc, nsid, lba, n), buf, off + size_t(i) * max_blocks * lbs, size_t(n) * lbs, split_done, &sp);
  }
  return true;
}

template uint32_t QueuePair::reap<nullptr>(uint32_t);

void QueuePair::tick_if_busy() {
  polls_since_tick_ = 0;
  // Any slot off the free stack (a command outstanding, or a held slot): tick() reads
  // the clock and scans at most once per scan interval.
  if (nfree_ < capacity()) tick();
}

uint32_t QueuePair::count_outstanding() const {
  uint32_t n = 0;
  for (const Slot& s : slots_) n += (s.state & (kBusy | kOrphan)) != 0;
  return n;
}

QueuePair::Slot* QueuePair::hold(IoCallback cb, void* arg) {
  if (nfree_ == 0)
    throw Error(Errc::no_memory, "queue pair " + std::to_string(qid_) + ": no free command slot to hold");
  const uint16_t cid = free_[--nfree_];
  Slot& s = slots_[cid];
  s.cb = cb;
  s.arg = arg;
  s.state = kHeld;
  ++held_;
  return &s;
}

void QueuePair::release(Slot* held) {
  if (held < slots_.data() || held >= slots_.data() + depth_ || !(held->state & kHeld))
    throw Error(Errc::invalid_argument, "queue pair " + std::to_string(qid_) + ": release of a slot it does not hold");
  Slot& s = *held;
  s.state &= uint8_t(~kHeld);  // an outstanding command ends as an unheld one would
  --held_;
  if (s.state == kFree) free_[nfree_++] = s.cid;
}

void QueuePair::complete_unusual(uint16_t cid) {
  if (cid < depth_ && (slots_[cid].state & kOrphan)) {
    // Its timeout was reported already; the slot is safe to reuse only now.
    Slot& s = slots_[cid];
    s.state &= kHeld;
    if (s.state == kFree) free_[nfree_++] = cid;
    ++stats_.late_completions;
    return;
  }
  ++stats_.spurious;
}

// Timeouts without a clock read per command: a scan runs at most every scan_ticks_,
// and each scan advances scan_epoch_. A command stamped with epoch e has been
// outstanding for more than (epoch - e - 1) scan intervals, so it is declared timed out
// once epoch - e > timeout / scan interval (rounded up): never early, and at most
// about two scan intervals late while the queue is polled.
void QueuePair::tick() {
  uint64_t now = ticks();
  if (now - last_scan_ < scan_ticks_) return;
  last_scan_ = now;
  ++scan_epoch_;
  if (owner_->fatal()) {
    abort_outstanding(HostStatus::controller_fatal);
    return;
  }
  for (uint32_t cid = 0; cid < depth_; ++cid) {
    Slot& s = slots_[cid];
    if (!(s.state & kBusy) || scan_epoch_ - s.epoch <= timeout_scans_) continue;
    // The command stays "orphan": its slot is not reused until its CQE arrives or the
    // controller is reset, because the device may still DMA into its buffer.
    s.state = uint8_t((s.state & kHeld) | kOrphan);
    ++stats_.timeouts;
    s.cb(s.arg, Completion{Status{}, 0, HostStatus::timeout});
  }
}

void QueuePair::abort_outstanding(HostStatus why) {
  for (uint32_t cid = 0; cid < depth_; ++cid) {
    Slot& s = slots_[cid];
    if (!(s.state & kBusy)) continue;
    s.state = uint8_t((s.state & kHeld) | kOrphan);
    s.cb(s.arg, Completion{Status{}, 0, why});
  }
}

namespace {
struct SyncWait {
  Completion c;
  bool done = false;
  static void cb(void* a, Completion c) {
    auto* w = static_cast<SyncWait*>(a);
    w->c = c;
    w->done = true;
  }
};
}  // namespace

static Completion wait_for(QueuePair& qp, SyncWait& w) {
  qp.ring();
  uint32_t idle = 0;
  while (!w.done) {
    if (qp.poll() == 0 && ++idle > 1024) std::this_thread::yield();
  }
  return w.c;
}

Completion QueuePair::execute(Sqe sqe, const DmaBuffer* buf, size_t off, size_t len) {
  SyncWait w;
  auto queued = [&] { return buf ? submit(sqe, *buf, off, len, SyncWait::cb, &w) : submit(sqe, SyncWait::cb, &w); };
  while (!queued()) poll();
  return wait_for(*this, w);
}

Completion QueuePair::io(uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb, const DmaBuffer& buf, size_t off) {
  SyncWait w;
  while (!submit_io(opc, nsid, slba, nlb, buf, off, SyncWait::cb, &w)) {
    if (in_flight() == 0) throw Error(Errc::invalid_argument, "transfer needs more command slots than the queue has");
    poll();
  }
  return wait_for(*this, w);
}

}  // namespace aisio::nvme
