// tcp: our NVMe/TCP initiator, one queue (one TCP connection) per thread, data in host
// memory. The request is the kernel backends' (a byte offset and length into a buffer),
// so a workload drives it as it drives psync and io_uring; the result is the bytes moved
// or -EIO, with the reason kept by the queue (last_error()).
//
// Per I/O: no allocation, lock or virtual call; one sendmsg per flush() and one recv
// per reap() cover every command of a batch (tcp/queue_pair.hpp).
#pragma once
#include <cerrno>
#include <functional>
#include <memory>

#include "backends/kernel_io.hpp"
#include "backends/namespace_target.hpp"
#include "tcp/queue_pair.hpp"

namespace aisio::target {
class Target;
}

namespace aisio::backends {

// Where the tcp backend gets its queues.
struct TcpTarget : NamespaceTarget {
  std::function<std::unique_ptr<tcp::QueuePair>(const tcp::QueueOptions&)> make_queue_pair;
};
// A tcp:// target; throws Error(invalid_argument) for another kind or an inactive NSID.
TcpTarget tcp_target_of(std::shared_ptr<target::Target> t, uint32_t nsid = 1);

class TcpQueue {
 public:
  using Request = KernelRequest;
  using Result = int64_t;

  TcpQueue(const TcpTarget& t, uint32_t depth)
      : nsid_(t.nsid),
        lba_shift_(uint32_t(__builtin_ctz(t.lba_size))),
        qp_(t.make_queue_pair({.depth = depth, .max_transfer = t.max_command_bytes()})) {}

  // A Read or Write of r.len bytes at byte r.off (whole blocks) into r.buf.
  template <class H>
  [[gnu::always_inline]] bool submit(Request& r) {
    return qp_->submit_io(r.op == kWrite ? nvme::nvm::WRITE : nvme::nvm::READ, nsid_, r.off >> lba_shift_,
                          r.len >> lba_shift_, r.buf, 1u << lba_shift_, &on_done<H>, &r);
  }
  int flush() {
    qp_->ring();
    return qp_->connected() || qp_->recovering() ? 0 : -EIO;  // reconnecting: its commands go again
  }
  template <class H>
  unsigned reap() {
    return qp_->poll();
  }
  uint32_t in_flight() const { return qp_->in_flight(); }
  tcp::QueuePair& queue_pair() { return *qp_; }

 private:
  template <class H>
  static void on_done(void* arg, nvme::Completion c) {
    auto& r = *static_cast<Request*>(arg);
    H::done(r, c.ok() ? int64_t(r.len) : -EIO);
  }

  uint32_t nsid_;
  uint32_t lba_shift_;
  std::unique_ptr<tcp::QueuePair> qp_;
};

}  // namespace aisio::backends
