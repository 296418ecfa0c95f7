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
  timeout_ticks_ = ticks_from(timeout);
  // Scan for expired commands a few times per timeout, at most every 10 ms (an MMIO
  // read of CSTS rides along).
  auto scan = std::min<std::chrono::nanoseconds>(timeout / 4, std::chrono::milliseconds(10));
  scan_ticks_ = ticks_from(scan);
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

  slots_.assign(depth_, Slot{nullptr, nullptr, 0, SlotState::free});
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
  sq_head_ = 0;
  phase_ = 1;  // the controller's first pass writes phase 1 over zeroed entries
  nfree_ = 0;
  for (uint32_t i = capacity(); i-- > 0;) {
    slots_[i].state = SlotState::free;
    free_[nfree_++] = uint16_t(i);
  }
  free_splits_.resize(capacity());
  for (uint32_t i = 0; i < capacity(); ++i) free_splits_[i] = capacity() - 1 - i;
  last_scan_ = ticks();
}

QueuePair::~QueuePair() {
  if (owner_) owner_->release_queue(*this);
}

void QueuePair::dma_wmb_before_doorbell() {
  // SQEs are plain stores to host memory; the controller may fetch them the moment it
  // sees the new tail, so they must be visible before the doorbell store (barrier.hpp).
  dma_wmb();
}

bool QueuePair::submit(const Sqe& sqe, IoCallback cb, void* arg) {
  if (nfree_ == 0) return false;
  uint16_t cid = free_[--nfree_];
  Slot& s = slots_[cid];
  s.cb = cb;
  s.arg = arg;
  s.stamp = ticks();
  s.state = SlotState::busy;
  // Copied straight into the SQ slot (no by-value temporary), then the CID.
  Sqe& slot = sq_[sq_tail_];
  slot = sqe;
  slot.cid = cid;
  if (++sq_tail_ == depth_) sq_tail_ = 0;
  ++stats_.submitted;
  return true;
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

void QueuePair::split_done(void* arg, const Completion& c) {
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

uint32_t QueuePair::poll(uint32_t max) {
  uint32_t n = 0;
  while (n < max) {
    volatile Cqe& e = cq_[cq_head_];
    uint16_t st = e.status;
    if ((st & 1u) != phase_) break;
    // The phase tag is the controller's last store to the entry: read the rest only
    // after seeing it (barrier.hpp).
    dma_rmb();
    uint16_t cid = e.cid;
    uint32_t dw0 = e.dw0;
    sq_head_ = e.sqhd;
    if (++cq_head_ == depth_) {
      cq_head_ = 0;
      phase_ ^= 1u;
    }
    complete(cid, uint16_t(st >> 1), dw0);
    ++n;
  }
  if (n) {
    // Entries up to cq_head_ are consumed; the controller may reuse them now.
    *cq_db_ = cq_head_;
    if (++polls_since_scan_ < 256) return n;
  }
  if (in_flight()) tick();
  return n;
}

void QueuePair::complete(uint16_t cid, uint16_t status_field, uint32_t dw0) {
  if (cid >= depth_ || slots_[cid].state == SlotState::free) {
    ++stats_.spurious;
    return;
  }
  Slot& s = slots_[cid];
  bool orphan = s.state == SlotState::orphan;
  s.state = SlotState::free;
  free_[nfree_++] = cid;
  if (orphan) {
    ++stats_.late_completions;
    return;
  }
  ++stats_.completed;
  s.cb(s.arg, Completion{Status(status_field), dw0, HostStatus::none});
}

void QueuePair::tick() {
  polls_since_scan_ = 0;
  uint64_t now = ticks();
  if (now - last_scan_ < scan_ticks_) return;
  last_scan_ = now;
  if (owner_->fatal()) {
    abort_outstanding(HostStatus::controller_fatal);
    return;
  }
  for (uint32_t cid = 0; cid < depth_; ++cid) {
    Slot& s = slots_[cid];
    if (s.state != SlotState::busy || now - s.stamp < timeout_ticks_) continue;
    // The command stays "orphan": its slot is not reused until its CQE arrives or the
    // controller is reset, because the device may still DMA into its buffer.
    s.state = SlotState::orphan;
    ++stats_.timeouts;
    s.cb(s.arg, Completion{Status{}, 0, HostStatus::timeout});
  }
}

void QueuePair::abort_outstanding(HostStatus why) {
  for (uint32_t cid = 0; cid < depth_; ++cid) {
    Slot& s = slots_[cid];
    if (s.state != SlotState::busy) continue;
    s.state = SlotState::orphan;
    s.cb(s.arg, Completion{Status{}, 0, why});
  }
}

namespace {
struct SyncWait {
  Completion c;
  bool done = false;
  static void cb(void* a, const Completion& c) {
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
