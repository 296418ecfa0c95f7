// unvme: our NVMe driver, one queue pair per thread, data buffers in host DMA memory
// or (the CUDA build) GPU memory reached by P2P.
//
// The queue takes a narrow description of where it runs (UnvmeTarget: a queue-pair
// factory, a DMA heap and the namespace), so a controller owned by this process and a
// queue pair lent by homid look the same to it. Completions arrive through the
// driver's callback from QueuePair::poll, which calls H::done at once (a direct call,
// inlined into the driver's reaping loop, for this queue's own requests): a handler may
// resubmit its request from there and the next flush() rings one doorbell for the
// batch. Per I/O: no allocation, lock, system call or virtual call (queue_pair.hpp).
#pragma once
#include <functional>
#include <memory>

#include "backends/namespace_target.hpp"
#include "backends/queue.hpp"
#include "memory/dma.hpp"
#include "nvme/queue_pair.hpp"

namespace aisio::nvme {
class Controller;
}
namespace aisio::target {
class Target;
}

namespace aisio::backends {

// Where the unvme backend gets its queue pairs and memory.
struct UnvmeTarget : NamespaceTarget {
  uint32_t page_size = 4096;             // CC.MPS
  std::shared_ptr<DmaHeap> dma;          // queues, PRP lists and host data buffers
  std::function<std::unique_ptr<nvme::QueuePair>(const nvme::QueueOptions&)> make_queue_pair;
  std::shared_ptr<nvme::Controller> ctrl;  // null for a queue pair lent by homid
};
// An opened target (target/target.hpp), or a controller of this process. Throws for an
// inactive NSID.
UnvmeTarget target_of(std::shared_ptr<target::Target> t, uint32_t nsid = 1);
UnvmeTarget target_of(std::shared_ptr<nvme::Controller> ctrl, uint32_t nsid = 1);

struct UnvmeRequest {
  nvme::Sqe sqe;        // submit(): the whole command, DPTR included (built once by the caller)
  uint8_t op = kRead;   // the caller's record of the direction (submit() sends sqe.opc)
  nvme::QueuePair::Slot* slot = nullptr;  // the command slot hold() gave it
};

class UnvmeQueue {
 public:
  using Request = UnvmeRequest;
  using Result = nvme::Completion;

  UnvmeQueue(const UnvmeTarget& t, uint32_t depth) : nsid_(t.nsid), qp_(t.make_queue_pair({.depth = depth})) {}
  // The queue pair (Delete I/O SQ/CQ) goes before anything its commands point into.
  ~UnvmeQueue() { qp_.reset(); }

  // A prebuilt command (r.sqe). Returns false when every command slot is in use.
  template <class H>
  [[gnu::always_inline]] bool submit(Request& r) {
    return qp_->submit(r.sqe, &on_cqe<H>, &r);
  }
  // Holds a command slot of the queue pair for r, with H's callback (QueuePair::hold):
  // submit_held<H>(r) then queues r.sqe on that slot. r must stay put while the queue
  // lives. Throws Error(no_memory) when no slot is free.
  template <class H>
  void hold(Request& r) {
    r.slot = qp_->hold(&on_cqe<H>, &r);
  }
  // r's prebuilt command on its held slot. Returns false when r's previous command has
  // not ended (it timed out and its CQE has not come).
  template <class H>
  [[gnu::always_inline]] bool submit_held(Request& r) {
    return qp_->submit_held(r.slot, r.sqe);
  }
  // A Read/Write of nlb blocks at slba into bytes [off, ...) of buf, PRPs built here
  // (split when larger than a command may move). H::done runs once per call.
  template <class H>
  bool submit_io(Request& r, uint8_t op, uint64_t slba, uint32_t nlb, const DmaBuffer& buf, size_t off) {
    return qp_->submit_io(op == kWrite ? nvme::nvm::WRITE : nvme::nvm::READ, nsid_, slba, nlb, buf, off, &on_cqe<H>,
                          &r);
  }
  [[gnu::always_inline]] int flush() {
    qp_->ring();
    return 0;
  }
  // The requests' own callback (on_cqe<H>) is named to poll(), which then calls it
  // directly, H::done inlined into the reaping loop (queue_pair.hpp).
  template <class H>
  [[gnu::always_inline]] unsigned reap() {
    return qp_->template poll<&on_cqe<H>>();
  }
  uint32_t in_flight() const { return qp_->in_flight(); }
  nvme::QueuePair& queue_pair() { return *qp_; }

 private:
  template <class H>
  [[gnu::always_inline]] static void on_cqe(void* arg, nvme::Completion c) {  // H::done inlined here
    H::done(*static_cast<Request*>(arg), c);
  }

  uint32_t nsid_;
  std::unique_ptr<nvme::QueuePair> qp_;
};

}  // namespace aisio::backends
