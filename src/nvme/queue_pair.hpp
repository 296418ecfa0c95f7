// An NVMe submission/completion queue pair driven by polling.
//
// Life cycle (as drivers/nvme/host/pci.c): memory allocated and zeroed, Create I/O CQ
// then Create I/O SQ on the admin queue (Controller::create_queue_pair), I/O, then
// Delete I/O SQ then Delete I/O CQ in the destructor. A controller reset re-creates the
// same queues in place; commands outstanding at that moment end with aborted_reset.
//
// The I/O path (submit, ring, poll) makes no allocation, takes no lock, makes no system
// call and no virtual call: a command slot is popped from a free stack (or, held by the
// caller with hold(), reused as it is), the SQE is stored, one doorbell write covers a
// batch, and completions are reaped by phase tag with one CQ head doorbell write per
// poll. A QueuePair belongs to one thread at a time. Completion callbacks may submit(),
// submit_held() and ring() on their queue pair; they must not poll() it and must not
// throw (poll keeps the CQ state in registers while it runs).
//
// Evidence (bench/driver-cost): with held slots and poll<kHot>(), submit and reap take
// about 50 host instructions per command (67 with the benchmark's loop and handler), and
// the measured window calls nothing but reap with the inlined handler and the
// rate-limited tick: bench/results/driver-cost/callgrind-qd128-flat.txt (every function
// that ran) and callgrind-qd128-source.txt (per source line).
#pragma once
#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "memory/dma.hpp"
#include "nvme/barrier.hpp"
#include "nvme/completion.hpp"
#include "nvme/data_pointer.hpp"
#include "spec/commands.hpp"

namespace aisio::nvme {

class Controller;
class QueuePair;

// Who created a queue pair on the controller and deletes it again: the Controller for
// in-process use, or a client of homid that asked the daemon over IPC.
class QueueOwner {
 public:
  virtual ~QueueOwner() = default;
  virtual bool fatal() const = 0;                // CSTS.CFS
  virtual void release_queue(QueuePair& qp) = 0; // Delete I/O SQ, then CQ
};

// What a queue pair needs to know of its controller and namespaces.
struct QueueGeometry {
  uint32_t page_shift = 12;          // CC.MPS + 12
  size_t max_transfer = 1u << 20;    // bytes per command (MDTS, or less)
  std::vector<uint32_t> lba_size;    // logical block size by NSID, 0 when inactive
};

struct QueueOptions {
  uint32_t depth = 128;        // SQ and CQ entries; at most depth - 1 commands in flight
  size_t max_transfer = 0;     // bytes per command; 0: the controller's MDTS (1 MiB if unlimited)
  bool use_sgl = false;        // SGLs instead of PRPs (the controller must advertise SGLS)
  std::chrono::milliseconds timeout{0};  // per command; 0: the controller's io_timeout
};

struct QueueStats {
  uint64_t submitted = 0;         // commands made visible to the controller by ring()
  uint64_t completed = 0;         // commands ended by their CQE
  uint64_t doorbells = 0;         // SQ tail doorbell writes
  uint64_t timeouts = 0;
  uint64_t late_completions = 0;  // CQEs that arrived after their command timed out
  uint64_t spurious = 0;          // CQEs naming a command id that was not outstanding
};

class QueuePair {
 public:
  ~QueuePair();
  QueuePair(const QueuePair&) = delete;
  QueuePair& operator=(const QueuePair&) = delete;

  uint16_t qid() const { return qid_; }
  uint32_t depth() const { return depth_; }
  uint32_t capacity() const { return depth_ - 1; }
  // Commands outstanding, timed-out ones whose CQE has not come included.
  uint32_t in_flight() const { return held_ ? count_outstanding() : capacity() - nfree_; }
  size_t max_transfer() const { return max_transfer_; }
  // Counters derived here rather than kept per command (the I/O path counts per batch).
  QueueStats stats() const {
    QueueStats s = stats_;
    s.completed = reaped_ - s.spurious - s.late_completions;
    return s;
  }

  // Queues a complete SQE (its DPTR as given; the CID is assigned here). Returns false
  // when every command slot is in use: poll() and try again (back-pressure).
  // Inline: the SQE is copied once, straight from the caller's into the SQ slot.
  bool submit(const Sqe& sqe, IoCallback cb, void* arg) {
    const uint32_t nfree = nfree_;
    if (nfree == 0) [[unlikely]] return false;
    // Members are read before the SQE stores, which the compiler must assume may alias them.
    const uint32_t tail = sq_tail_;
    const uint32_t next = tail + 1 == depth_ ? 0 : tail + 1;
    const uint16_t cid = free_[nfree - 1];
    Slot& s = slots_[cid];
    Sqe& slot = sq_[tail];
    nfree_ = nfree - 1;
    sq_tail_ = next;
    s.cb = cb;
    s.arg = arg;
    s.epoch = scan_epoch_;  // no clock read per command: see tick()
    s.state = kBusy;
    slot = sqe;
    slot.cid = cid;
    return true;
  }
  // Held command slots, for a caller that keeps a fixed set of requests and resubmits
  // each from its own completion (the benchmark): hold() takes a free slot for good,
  // with its callback and argument; submit_held() queues a command on it without the
  // free stack and without storing the callback again; release() gives it back. A held
  // slot's command completes, times out and is aborted like any other; only its slot
  // returns to the holder instead of the free stack. Throws Error(no_memory) when every
  // slot is in use.
  struct Slot;  // a command slot; to a caller of hold(), an opaque handle
  Slot* hold(IoCallback cb, void* arg);
  void release(Slot* held);  // Error(invalid_argument) when it is not held
  // Queues a complete SQE on a slot from hold(). Returns false (and queues nothing)
  // while the slot's previous command has not ended (it timed out, its CQE not come).
  bool submit_held(Slot* held, const Sqe& sqe) {
    assert(held >= slots_.data() && held < slots_.data() + depth_ && "not a slot of this queue pair");
    Slot& s = *held;
    if (s.state != kHeld) [[unlikely]] return false;
    // No test for a full SQ: a held idle slot is a CID no command uses, and the SQ has
    // room for one command per CID (capacity() = depth - 1).
    const uint32_t tail = sq_tail_;
    const uint32_t next = tail + 1 == depth_ ? 0 : tail + 1;
    Sqe& slot = sq_[tail];
    sq_tail_ = next;
    s.epoch = scan_epoch_;
    s.state = kHeld | kBusy;
    slot = sqe;
    slot.cid = s.cid;
    return true;
  }
  // Queues a command moving bytes [off, off + len) of buf, building PRPs or an SGL.
  // Throws Error(invalid_argument) for a range outside buf, a buffer that is not dword
  // aligned, or len > max_transfer().
  bool submit(Sqe sqe, const DmaBuffer& buf, size_t off, size_t len, IoCallback cb, void* arg);
  // Read/Write/Compare of nlb blocks at slba; transfers larger than max_transfer() are
  // split into several commands and cb is called once, with the first error if any.
  // Returns false (and queues nothing) when there are not enough free slots.
  bool submit_io(uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb, const DmaBuffer& buf,
                 size_t off, IoCallback cb, void* arg);

  // Writes the SQ tail doorbell once for everything queued since the last ring.
  void ring() {
    const uint32_t tail = sq_tail_;
    if (tail == sq_tail_rung_) return;
    stats_.submitted += tail > sq_tail_rung_ ? tail - sq_tail_rung_ : tail + depth_ - sq_tail_rung_;
    // SQEs are plain stores to host memory; the controller may fetch them the moment it
    // sees the new tail, so they must be visible before the doorbell store (barrier.hpp).
    dma_wmb();
    *sq_db_ = tail;
    sq_tail_rung_ = tail;
    ++stats_.doorbells;
  }
  // Reaps up to max completions, calling their callbacks; returns how many. Also ends
  // commands that passed their timeout, and notices CSTS.CFS while idle.
  // kHot, when given, is the callback of the caller's own commands: a command whose slot
  // holds exactly that callback gets it as a direct (inlinable) call instead of a call
  // through the slot's pointer; any other command's callback is called as usual. So the
  // outcome is the same for every command, the benchmark's loop only skips an indirect
  // call and the callback's frame.
  template <IoCallback kHot = nullptr>
  [[gnu::always_inline]] uint32_t poll(uint32_t max = UINT32_MAX) {
    // Inline test of the next CQE's phase tag, so that spinning on an empty CQ costs a
    // load and a compare, not a call; the clock is read on every 64th empty poll.
    if ((cq_[cq_head_].status & 1u) == phase_) return reap<kHot>(max);
    if (++polls_since_tick_ >= 64) [[unlikely]] tick_if_busy();
    return 0;
  }

  // Synchronous forms: submit, ring and poll until this command ends.
  Completion execute(Sqe sqe, const DmaBuffer* buf = nullptr, size_t off = 0, size_t len = 0);
  Completion io(uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb, const DmaBuffer& buf, size_t off = 0);
  Completion read(uint32_t nsid, uint64_t slba, uint32_t nlb, const DmaBuffer& buf, size_t off = 0) {
    return io(nvm::READ, nsid, slba, nlb, buf, off);
  }
  Completion write(uint32_t nsid, uint64_t slba, uint32_t nlb, const DmaBuffer& buf, size_t off = 0) {
    return io(nvm::WRITE, nsid, slba, nlb, buf, off);
  }

  // A queue pair whose queues are created by someone else (homid creates them for a
  // client): allocate its memory from `dma`, have the owner create the queues at
  // sq_bus()/cq_bus(), then bind() the granted queue id and doorbells. opt.timeout
  // must be set. `keep` is held for the queue pair's lifetime.
  static std::unique_ptr<QueuePair> detached(QueueOwner* owner, std::shared_ptr<void> keep, const QueueOptions& opt,
                                             QueueGeometry geo, DmaHeap& dma);
  void bind(uint16_t qid, volatile uint32_t* sq_doorbell, volatile uint32_t* cq_doorbell);
  uint64_t sq_bus() const { return sq_mem_.iova(); }
  uint64_t cq_bus() const { return cq_mem_.iova(); }

  // Logical block size of nsid on this controller, 0 when nsid is not active.
  uint32_t lba_size(uint32_t nsid) const { return nsid < lba_size_.size() ? lba_size_[nsid] : 0; }

 private:
  friend class Controller;
  // Slot states (bits): free (on the free stack); busy (its command is outstanding);
  // orphan (its command timed out or was aborted and its CQE has not come: the slot is
  // not reused, the device may still DMA). kHeld marks a slot taken by hold(): it goes
  // back to its holder, not to the free stack.
  enum : uint8_t { kFree = 0, kBusy = 1, kOrphan = 2, kHeld = 4 };

 public:
  struct Slot {
    IoCallback cb;
    void* arg;
    uint32_t epoch;   // scan_epoch_ at submission, for the timeout scan
    uint8_t state;
    uint16_t cid;     // its own index, for submit_held()
  };

 private:
  struct Split {      // parent of a transfer split into several commands
    IoCallback cb;
    void* arg;
    uint32_t remaining;
    Completion result;
    QueuePair* qp;
    uint32_t index;
  };

  QueuePair(QueueOwner* owner, uint16_t qid, const QueueOptions& opt, QueueGeometry geo);
  void allocate(DmaHeap& dma);
  void reset_state();                         // after (re)creation: indices, phase, memory
  void abort_outstanding(HostStatus why);     // end every busy command with `why`
  // poll() once a new CQE is there. Not inlined into the caller's loop: spinning on an
  // empty CQ then costs no register spills for the reaping loop (8 instructions per
  // idle pass when it was inlined), and a call per batch is little.
  template <IoCallback kHot>
  [[gnu::noinline]] uint32_t reap(uint32_t max);
  void tick_if_busy();                        // tick() when commands are outstanding
  void tick();                                // timeouts and CSTS.CFS, rate limited
  // Ends command cid with its CQE. slots/free/depth are reap()'s copies of the members
  // (a callback's submit() cannot move them, and the compiler need not reload them).
  template <IoCallback kHot>
  [[gnu::always_inline]] void complete(Slot* slots, uint16_t* free, uint32_t depth, uint16_t cid,
                                       uint16_t status_field, uint32_t dw0) {
    // One load of the slot state decides; CIDs we did not hand out are counted, not trusted.
    if (cid < depth) [[likely]] {
      Slot& s = slots[cid];
      const uint8_t state = s.state;
      // Freed (or returned to its holder) before the callback, which may submit again.
      // The hot reaper's commands are expected on held slots: that state is tested first.
      if (kHot != nullptr && state == (kHeld | kBusy)) [[likely]] {
        s.state = kHeld;
        return call<kHot>(s, status_field, dw0);
      }
      if (state == kBusy) [[likely]] {
        s.state = kFree;
        free[nfree_++] = cid;
        return call<kHot>(s, status_field, dw0);
      }
      if (kHot == nullptr && state == (kHeld | kBusy)) {
        s.state = kHeld;
        return call<kHot>(s, status_field, dw0);
      }
    }
    complete_unusual(cid);
  }
  // The Completion is built in each branch: built once ahead of them, the compiler kept
  // a copy on the stack for the indirect call, at two stores per command.
  template <IoCallback kHot>
  [[gnu::always_inline]] static void call(const Slot& s, uint16_t status_field, uint32_t dw0) {
    if constexpr (kHot != nullptr) {
      if (s.cb == kHot) [[likely]] return kHot(s.arg, Completion{Status(status_field), dw0, HostStatus::none});
    }
    s.cb(s.arg, Completion{Status(status_field), dw0, HostStatus::none});
  }
  uint32_t count_outstanding() const;         // in_flight() while slots are held
  void complete_unusual(uint16_t cid);        // spurious CID, or a CQE after its timeout
  static void split_done(void* arg, Completion c);

  QueueOwner* owner_;
  std::shared_ptr<void> keep_;                // I/O queues keep their controller alive
  uint16_t qid_;
  uint32_t depth_;
  size_t max_transfer_;
  uint32_t page_shift_;
  bool use_sgl_;
  uint64_t scan_ticks_ = 0;                   // at least this long between two scans
  uint64_t last_scan_ = 0;
  uint32_t scan_epoch_ = 0;                   // scans done so far
  uint32_t timeout_scans_ = 0;                // scans after which a command has timed out
  uint32_t polls_since_tick_ = 0;

  DmaBuffer sq_mem_, cq_mem_, lists_mem_;
  Sqe* sq_ = nullptr;
  volatile Cqe* cq_ = nullptr;
  volatile uint32_t* sq_db_ = nullptr;
  volatile uint32_t* cq_db_ = nullptr;
  uint32_t list_pages_ = 0;                   // PRP list / SGL pages per command slot

  uint32_t sq_tail_ = 0, sq_tail_rung_ = 0;
  uint32_t cq_head_ = 0;
  uint16_t phase_ = 1;
  bool in_poll_ = false;                      // callbacks must not poll (set in debug builds)
  uint64_t reaped_ = 0;                       // CQEs consumed

  std::vector<Slot> slots_;                   // indexed by CID
  std::vector<uint16_t> free_;                // stack of free CIDs
  uint32_t nfree_ = 0;
  uint32_t held_ = 0;                         // slots taken by hold()
  std::vector<Split> splits_;
  std::vector<uint32_t> free_splits_;
  std::vector<uint32_t> lba_size_;            // by NSID
  QueueStats stats_;
};

// The reaping loop, in the header so that poll<kHot>() can inline kHot into it; the
// plain poll()'s instance is compiled once, in queue_pair.cpp.
template <IoCallback kHot>
uint32_t QueuePair::reap(uint32_t max) {
  assert(!in_poll_ && "a completion callback polled its own queue pair");
  // The CQ state lives in locals for the loop: callbacks may submit (SQ side) but do
  // not poll, so nothing else moves the head or the phase meanwhile; the slot table and
  // the free stack never move after allocate().
  // The loop walks a pointer over the CQ in runs that end at the end of the CQ or after
  // max entries, so that one compare per entry covers both.
  volatile Cqe* const cq = cq_;
  volatile Cqe* const end = cq + depth_;
  volatile Cqe* e = cq + cq_head_;
  Slot* const slots = slots_.data();
  uint16_t* const free = free_.data();
  const uint32_t depth = depth_;
  uint32_t phase = phase_;
  uint32_t n = 0;
#ifndef NDEBUG
  in_poll_ = true;
#endif
  while (n < max) {
    volatile Cqe* const start = e;
    volatile Cqe* const stop = e + std::min<size_t>(size_t(end - e), max - n);
    bool empty = false;
    while (e != stop) {
      const uint16_t st = e->status;
      if ((st & 1u) != phase) {
        empty = true;
        break;
      }
      // The phase tag is the controller's last store to the entry: read the rest only
      // after seeing it (barrier.hpp). After the barrier, plain loads: the entry does
      // not change until the head doorbell below returns it, so a field the callback
      // does not use need not be loaded.
      dma_rmb();
      const Cqe& entry = const_cast<const Cqe&>(*e);
      const uint16_t cid = entry.cid;
      const uint32_t dw0 = entry.dw0;
      ++e;
      complete<kHot>(slots, free, depth, cid, uint16_t(st >> 1), dw0);
    }
    n += uint32_t(e - start);
    // At the end of the CQ the head returns to 0 and the expected phase flips (the
    // controller inverts the tag on each pass): once per run, not per entry.
    if (e == end) {
      e = cq;
      phase ^= 1u;
    }
    if (empty) break;
  }
#ifndef NDEBUG
  in_poll_ = false;
#endif
  if (n) {
    const uint32_t head = uint32_t(e - cq);
    cq_head_ = head;
    phase_ = uint16_t(phase);
    reaped_ += n;
    // One CQ head doorbell for the batch: entries up to head are consumed and the
    // controller may reuse them. The compiler barrier keeps the plain loads of those
    // entries (cid, dw0) ahead of this volatile store. No CPU fence, as in Linux's
    // nvme_ring_cq_doorbell: on x86-64 a store never passes an older load; elsewhere
    // the loads were consumed by the branches and callbacks above before the store.
    compiler_barrier();
    *cq_db_ = head;
  }
  // A queue that always has completions is still scanned for timeouts, less often.
  if (++polls_since_tick_ >= 256) [[unlikely]] tick_if_busy();
  return n;
}
extern template uint32_t QueuePair::reap<nullptr>(uint32_t);

}  // namespace aisio::nvme
