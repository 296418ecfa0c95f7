// The plain types shared by the device library (nvme_queue.cuh) and host code: status
// words, SQE/CQE layouts, per-queue state and the queue view a kernel gets. Compiles
// with g++ as well as nvcc.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define AISIO_HD __host__ __device__
#else
#define AISIO_HD
#endif

namespace aisio::gpu {

// ---- status words ---------------------------------------------------------------------
// Bits 0..14: the CQE status field (SC bits 0..7, SCT 8..10, CRD 11..12, M 13, DNR 14),
// exactly as the controller wrote it. Host outcomes (no CQE) sit above it.
namespace st {
inline constexpr uint32_t kOk = 0;
inline constexpr uint32_t kTimeout = 0x10000;      // no completion within the poll timeout
inline constexpr uint32_t kLost = 0x20000;         // the round ended without this command's completion
inline constexpr uint32_t kQueueBroken = 0x30000;  // not submitted: an earlier timeout broke the queue
inline constexpr uint32_t kNotSubmitted = 0x40000; // the thread had no command this round
inline constexpr uint32_t kPrpError = 0x50000;     // PRPs could not be built (unaligned, too large)
inline constexpr uint32_t kNeverRun = 0xFFFFFFFFu; // a command list entry no thread took
AISIO_HD constexpr uint32_t sc(uint32_t s) { return s & 0xFFu; }
AISIO_HD constexpr uint32_t sct(uint32_t s) { return (s >> 8) & 7u; }
AISIO_HD constexpr bool host_outcome(uint32_t s) { return s >= 0x10000; }
}  // namespace st

// ---- queue memory and state -----------------------------------------------------------
struct alignas(64) Sqe64 {
  uint32_t dw[16];
};
struct alignas(16) Cqe16 {
  uint32_t dw[4];
};

// Per-queue state that survives between kernel launches (device memory). Owned by the
// one block that drives the queue while a kernel runs.
struct QueueState {
  uint32_t sq_tail = 0;
  uint32_t cq_head = 0;
  uint32_t phase = 1;
  uint32_t round = 0;
  uint32_t broken = 0;
  uint32_t pad[3] = {};
  unsigned long long submitted = 0, completed = 0, timeouts = 0, spurious = 0, rounds = 0;
};

// What a kernel needs to drive one queue pair (plain data; an array of these lives in
// device memory, one per queue). Pointers are device-visible addresses.
// (No default member initializers: it is also a member of the __shared__ BlockQueue.)
struct QueueView {
  Sqe64* sq;
  Cqe16* cq;
  uint32_t* sq_db;  // SQ tail doorbell
  uint32_t* cq_db;  // CQ head doorbell
  QueueState* state;
  uint32_t depth;   // entries in the SQ and in the CQ
  uint16_t qid;
};

struct PollConfig {
  long long timeout_cycles = 0;  // clock64() cycles a poller waits for its CQE (0: forever)
  uint32_t backoff_ns = 0;       // __nanosleep between polls (0: spin)
};

// Parameters of the GPU-resident null controller (null_controller.cuh).
struct NullControllerParams {
  const QueueView* queues;  // SQ/CQ/doorbells in device memory
  uint32_t count;           // queues (one warp each)
  const volatile int* stop; // host-mapped: set to end the kernel
  volatile int* running;    // host-mapped: warps that have started (the host waits for all)
  unsigned long long* served;  // per queue: commands completed
};

}  // namespace aisio::gpu
