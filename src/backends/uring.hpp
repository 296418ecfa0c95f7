// io_uring (liburing): one ring per thread. Interrupt-driven by default; iopoll =
// IORING_SETUP_IOPOLL (polled completions, O_DIRECT only), sqpoll = IORING_SETUP_SQPOLL
// (a kernel thread submits). Files and one buffer may be registered (fixed I/O).
//
// submit() fills an SQE (the ring has room for `entries` I/Os in flight: the caller
// never has more); flush() enters the kernel, optionally waiting for one completion;
// reap() walks the CQ ring. Built without liburing, the constructor throws
// not_supported.
#pragma once
#include <cstdint>
#include <memory>
#include <span>

#include "backends/kernel_io.hpp"

struct io_uring;

namespace aisio::backends {

struct UringOptions {
  unsigned entries = 32;
  bool iopoll = false;
  bool sqpoll = false;
  bool flush_waits = false;  // flush() = io_uring_submit_and_wait(1)
};

class UringQueue {
 public:
  using Request = KernelRequest;
  using Result = int64_t;  // the CQE's res: bytes, or -errno

  explicit UringQueue(const UringOptions& o);
  ~UringQueue();
  UringQueue(const UringQueue&) = delete;
  UringQueue& operator=(const UringQueue&) = delete;

  void register_files(std::span<const int> fds);
  void register_buffer(void* p, size_t len);

  template <class H>
  void submit(Request& r) {
    prep(r);
  }
  // io_uring_submit, or io_uring_submit_and_wait(1) when the options say flush_waits
  // and an I/O is in flight;
  // returns its result (-errno on failure; -EINTR, -EAGAIN and -EBUSY are transient).
  int flush();
  // Blocks until a completion is there (true), or returns false when interrupted.
  // Throws aisio::Error on any other failure.
  bool wait();

  template <class H>
  unsigned reap() {
    Done done[kReapBatch];
    unsigned total = 0, n;
    do {
      n = collect(done, kReapBatch);
      for (unsigned i = 0; i < n; ++i) H::done(*done[i].r, done[i].res);
      total += n;
    } while (n == kReapBatch);
    return total;
  }
  uint32_t in_flight() const { return in_flight_; }

 private:
  static constexpr unsigned kReapBatch = 64;
  struct Done {
    Request* r;
    Result res;
  };
  void prep(Request& r);
  unsigned collect(Done* out, unsigned max);

  std::unique_ptr<io_uring> ring_;
  bool flush_waits_ = false;
  uint32_t in_flight_ = 0;
};

}  // namespace aisio::backends
