// psync: pread/pwrite. submit() does the I/O (retrying EINTR) and keeps the result;
// reap() hands it to the handler. One I/O in flight per queue.
#pragma once
#include <unistd.h>

#include <cerrno>

#include "backends/kernel_io.hpp"
#include "backends/sync_queue.hpp"

namespace aisio::backends {

class PsyncQueue : public SyncCompletion<KernelRequest, int64_t> {
 public:
  using Request = KernelRequest;
  using Result = int64_t;  // bytes, or -errno

  template <class H>
  void submit(Request& r) {
    ssize_t n;
    do {
      n = r.op == kWrite ? ::pwrite(r.fd, r.buf, r.len, off_t(r.off)) : ::pread(r.fd, r.buf, r.len, off_t(r.off));
    } while (n < 0 && errno == EINTR);
    complete(r, n < 0 ? -int64_t(errno) : int64_t(n));
  }
};

}  // namespace aisio::backends
