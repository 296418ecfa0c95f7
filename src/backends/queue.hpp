// The backends: one per-thread queue interface that every workload drives.
//
// A backend queue belongs to one thread and moves I/O between a device (or file) and
// memory. Every backend has the same three verbs, resolved at compile time (the
// workloads are templates on the queue type: no virtual call per I/O):
//
//   q.template submit<H>(req)   queue one I/O described by req (the caller's object,
//                               which stays put until its completion)
//   q.flush()                   make what was queued visible to the device (the SQ tail
//                               doorbell, io_uring_enter); returns 0 or -errno
//   q.template reap<H>()        collect completions; calls H::done(req, result) for each
//                               and returns how many
//
// H is the workload's completion handler: a type with a static done(Q::Request&,
// Q::Result). It may submit again from done() (unvme resubmits from the driver's
// completion callback), but must not reap from it.
//
// The backends, one file each:
//   psync.hpp   pread/pwrite, the I/O done inside submit (queue depth 1 per file)
//   uring.hpp   io_uring through liburing (interrupt-driven, IOPOLL, SQPOLL)
//   unvme.hpp   our NVMe driver: one queue pair, host or GPU data memory
//   sync_queue.hpp  the completion side of backends that do the I/O in submit()
// The GPU backends (src/gpu: unvme_gpu_queue.hpp, device_queue.hpp, cufile_queue.hpp)
// have the same verbs; the CUDA build announces them through the Registry (registry.hpp).
#pragma once
#include <concepts>
#include <cstdint>

namespace aisio::backends {

enum Op : uint8_t { kRead = 0, kWrite = 1 };

template <class Q>
concept Queue = requires(Q q) {
  typename Q::Request;
  typename Q::Result;
  q.flush();
  { q.in_flight() } -> std::convertible_to<uint32_t>;
};

}  // namespace aisio::backends
