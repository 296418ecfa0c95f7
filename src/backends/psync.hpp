// psync: pread/pwrite. submit() does the I/O (retrying EINTR) and keeps the result;
// reap() hands it to the handler. One I/O in flight per queue.
#pragma once
#include <unistd.h>

#include <cerrno>

#include "backends/kernel_io.hpp"

namespace aisio::backends {

class PsyncQueue {
 public:
  using Request = KernelRequest;
  using Result = int64_t;  // bytes, or -errno

  template <class H>
  void submit(Request& r) {
    ssize_t n;
    do {
      n = r.op == kWrite ? ::pwrite(r.fd, r.buf, r.len, off_t(r.off)) : ::pread(r.fd, r.buf, r.len, off_t(r.off));
    } while (n < 0 && errno == EINTR);
    done_ = &r;
    res_ = n < 0 ? -int64_t(errno) : int64_t(n);
  }
  int flush() { return 0; }
  template <class H>
  unsigned reap() {
    if (!done_) return 0;
    Request* r = done_;
    done_ = nullptr;
    H::done(*r, res_);
    return 1;
  }
  uint32_t in_flight() const { return done_ ? 1 : 0; }

 private:
  Request* done_ = nullptr;
  Result res_ = 0;
};

}  // namespace aisio::backends
