#include "backends/uring.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "common/error.hpp"

#if AISIO_HAVE_URING
#include <liburing.h>
#endif

namespace aisio::backends {

#if AISIO_HAVE_URING

UringQueue::UringQueue(const UringOptions& o) : ring_(std::make_unique<io_uring>()), flush_waits_(o.flush_waits) {
  io_uring_params p{};
  if (o.iopoll) p.flags |= IORING_SETUP_IOPOLL;
  if (o.sqpoll) {
    p.flags |= IORING_SETUP_SQPOLL;
    p.sq_thread_idle = 1000;  // ms
  }
  int r = io_uring_queue_init_params(o.entries, ring_.get(), &p);
  if (r < 0) {
    ring_.reset();
    throw Error(Errc::not_supported, fmt::format("io_uring_queue_init({} entries{}{}): {}", o.entries,
                                                 o.iopoll ? ", IOPOLL" : "", o.sqpoll ? ", SQPOLL" : "",
                                                 std::strerror(-r)));
  }
}

UringQueue::~UringQueue() {
  if (ring_) io_uring_queue_exit(ring_.get());
}

void UringQueue::register_files(std::span<const int> fds) {
  int r = io_uring_register_files(ring_.get(), fds.data(), unsigned(fds.size()));
  if (r < 0) throw Error(Errc::system, fmt::format("io_uring_register_files: {}", std::strerror(-r)));
}

void UringQueue::register_buffer(void* p, size_t len) {
  iovec iov{p, len};
  int r = io_uring_register_buffers(ring_.get(), &iov, 1);
  if (r < 0)
    throw Error(Errc::system,
                fmt::format("io_uring_register_buffers ({} bytes): {} (RLIMIT_MEMLOCK?)", len, std::strerror(-r)));
}

void UringQueue::prep(Request& r) {
  // In flight <= entries, yet the SQ can be full: an SQPOLL thread may post completions
  // before it moves the SQ head past their entries. Wait for it (or, without SQPOLL,
  // submit what is queued) and try again.
  io_uring_sqe* sqe;
  while (!(sqe = io_uring_get_sqe(ring_.get()))) [[unlikely]] {
    if (ring_->flags & IORING_SETUP_SQPOLL) io_uring_sqring_wait(ring_.get());
    else io_uring_submit(ring_.get());
  }
  const int fd = r.file_index >= 0 ? r.file_index : r.fd;
  if (r.fixed_buf) {
    if (r.op == kWrite) io_uring_prep_write_fixed(sqe, fd, r.buf, r.len, r.off, 0);
    else io_uring_prep_read_fixed(sqe, fd, r.buf, r.len, r.off, 0);
  } else {
    if (r.op == kWrite) io_uring_prep_write(sqe, fd, r.buf, r.len, r.off);
    else io_uring_prep_read(sqe, fd, r.buf, r.len, r.off);
  }
  if (r.file_index >= 0) sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data(sqe, &r);
  ++in_flight_;
}

int UringQueue::flush() {
  // Never waits with nothing in flight: no completion would come.
  return flush_waits_ && in_flight_ ? io_uring_submit_and_wait(ring_.get(), 1) : io_uring_submit(ring_.get());
}

bool UringQueue::wait() {
  io_uring_cqe* cqe = nullptr;
  int r = io_uring_wait_cqe(ring_.get(), &cqe);
  if (r == -EAGAIN || r == -EINTR) return false;
  if (r < 0) throw Error(Errc::system, fmt::format("io_uring_wait_cqe: {}", std::strerror(-r)));
  return true;
}

unsigned UringQueue::collect(Done* out, unsigned max) {
  unsigned head, n = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(ring_.get(), head, cqe) {
    if (n == max) break;
    out[n++] = {static_cast<Request*>(io_uring_cqe_get_data(cqe)), cqe->res};
  }
  io_uring_cq_advance(ring_.get(), n);
  in_flight_ -= n;
  return n;
}

#else  // no liburing

}  // namespace aisio::backends
struct io_uring {};
namespace aisio::backends {

UringQueue::UringQueue(const UringOptions&) {
  throw Error(Errc::not_supported, "io_uring: not built (liburing was not found at configure time)");
}
UringQueue::~UringQueue() = default;
void UringQueue::register_files(std::span<const int>) {}
void UringQueue::register_buffer(void*, size_t) {}
void UringQueue::prep(Request&) {}
int UringQueue::flush() { return -ENOSYS; }
bool UringQueue::wait() { return false; }
unsigned UringQueue::collect(Done*, unsigned) { return 0; }

#endif

}  // namespace aisio::backends
