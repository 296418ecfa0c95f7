// An NVMe submission/completion queue pair driven by polling.
//
// Life cycle (as drivers/nvme/host/pci.c): memory allocated and zeroed, Create I/O CQ
// then Create I/O SQ on the admin queue (Controller::create_queue_pair), I/O, then
// Delete I/O SQ then Delete I/O CQ in the destructor. A controller reset re-creates the
// same queues in place; commands outstanding at that moment end with aborted_reset.
//
// The I/O path (submit, ring, poll) makes no allocation, takes no lock, makes no system
// call and no virtual call: a command slot is popped from a free stack, the SQE is
// stored, one doorbell write covers a batch, and completions are reaped by phase tag
// with one CQ head doorbell write per poll. A QueuePair belongs to one thread at a time.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "memory/dma.hpp"
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
  uint64_t submitted = 0;
  uint64_t completed = 0;
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
  uint32_t in_flight() const { return capacity() - nfree_; }
  size_t max_transfer() const { return max_transfer_; }
  const QueueStats& stats() const { return stats_; }

  // Queues a complete SQE (its DPTR as given; the CID is assigned here). Returns false
  // when every command slot is in use: poll() and try again (back-pressure).
  bool submit(const Sqe& sqe, IoCallback cb, void* arg);
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
    if (sq_tail_ != sq_tail_rung_) {
      dma_wmb_before_doorbell();
      *sq_db_ = sq_tail_;
      sq_tail_rung_ = sq_tail_;
      ++stats_.doorbells;
    }
  }
  // Reaps up to max completions, calling their callbacks; returns how many. Also ends
  // commands that passed their timeout, and notices CSTS.CFS while idle.
  uint32_t poll(uint32_t max = UINT32_MAX);

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
  enum class SlotState : uint8_t { free, busy, orphan };
  struct Slot {
    IoCallback cb;
    void* arg;
    uint64_t stamp;   // submission time in clock ticks, for the timeout scan
    SlotState state;
  };
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
  void tick();                                // timeouts and CSTS.CFS, rate limited
  void complete(uint16_t cid, uint16_t status_field, uint32_t dw0);
  void dma_wmb_before_doorbell();
  static void split_done(void* arg, const Completion& c);

  QueueOwner* owner_;
  std::shared_ptr<void> keep_;                // I/O queues keep their controller alive
  uint16_t qid_;
  uint32_t depth_;
  size_t max_transfer_;
  uint32_t page_shift_;
  bool use_sgl_;
  uint64_t timeout_ticks_ = 0;
  uint64_t scan_ticks_ = 0;
  uint64_t last_scan_ = 0;
  uint32_t polls_since_scan_ = 0;

  DmaBuffer sq_mem_, cq_mem_, lists_mem_;
  Sqe* sq_ = nullptr;
  volatile Cqe* cq_ = nullptr;
  volatile uint32_t* sq_db_ = nullptr;
  volatile uint32_t* cq_db_ = nullptr;
  uint32_t list_pages_ = 0;                   // PRP list / SGL pages per command slot

  uint32_t sq_tail_ = 0, sq_tail_rung_ = 0;
  uint32_t cq_head_ = 0;
  uint16_t phase_ = 1;
  uint16_t sq_head_ = 0;                      // last SQHD the controller reported

  std::vector<Slot> slots_;                   // indexed by CID
  std::vector<uint16_t> free_;                // stack of free CIDs
  uint32_t nfree_ = 0;
  std::vector<Split> splits_;
  std::vector<uint32_t> free_splits_;
  std::vector<uint32_t> lba_size_;            // by NSID
  QueueStats stats_;
};

}  // namespace aisio::nvme
