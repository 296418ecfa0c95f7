// Device-initiated NVMe I/O: a header-only CUDA library with which GPU threads drive an
// NVMe queue pair directly (no CPU on the I/O path).
//
// Shape (as the paper's cuda-run): one thread block per queue pair, one thread per
// command slot. A round is block-collective:
//
//   bq_submit():   every active thread builds its SQE and writes it into its own SQ slot
//                  with volatile stores; __syncthreads(); thread 0 __threadfence_system()
//                  then stores the SQ tail doorbell (one doorbell write per round).
//   bq_complete(): thread i polls CQ entry (head + i) for its phase tag, with a timeout
//                  counted in GPU clock cycles (clock64()); it reads the CQE payload only
//                  after the phase tag is seen (acquire load), and files the status under
//                  the thread that owns the command id. __syncthreads(); thread 0 writes
//                  the CQ head doorbell. Every thread gets its own command's NVMe status.
//
// Memory ordering points (the GPU side of src/nvme/barrier.hpp):
//  1. SQE stores -> SQ tail doorbell. The SQEs are written by many threads, the doorbell
//     by one. __syncthreads() makes every SQE store happen-before thread 0's next
//     instruction (CTA scope); __threadfence_system() (fence.sc.sys) is cumulative, so
//     those stores are ordered before the doorbell store for every observer in the
//     system: the controller (a PCIe device reading GPU memory, or a host thread of the
//     software controller reading host memory) that sees the new tail sees the entries.
//  2. CQE phase tag -> CQE payload. The controller writes dw0..dw2, then dw3 (command id,
//     status, phase). The poll is an acquire load at system scope (ld.acquire.sys), so
//     the payload loads that follow cannot be satisfied earlier than the phase tag.
//  3. CQE reads -> CQ head doorbell. The head doorbell gives entries back to the
//     controller; every poller has consumed its entry (values in registers/shared
//     memory) before the __syncthreads() that precedes the doorbell store.
//  4. Doorbells are plain volatile 32-bit stores: to BAR0 (registered with
//     cudaHostRegisterIoMemory, uncached MMIO) or to the software controller's register
//     page (host memory registered with cudaHostRegister).
//
// Command ids: cid = (round & 63) << 10 | thread. A CQE whose id names no outstanding
// command of this round (stale, duplicated, out of range) is counted as spurious; a
// command left without a completion at the end of a round is reported as lost or, when
// a poller ran out of time, as a timeout. After a timeout the queue's indices are no
// longer known, so it is marked broken: later rounds submit nothing and return
// kQueueBroken until the host recreates the queue (QueueSet::recreate()).
//
// Requirements: blockDim.x <= depth - 1 (an NVMe queue holds depth - 1 commands), at
// most kMaxThreads (1024) threads, one block per queue at a time. Compute capability
// 7.0+ (ld.acquire, __nanosleep).
#pragma once
#include <cstdint>

#include "gpu/device/nvme_types.hpp"

namespace aisio::gpu {

// ---- low-level accessors --------------------------------------------------------------
__device__ __forceinline__ uint32_t ld_acquire_sys(const uint32_t* p) {
  uint32_t v;
  asm volatile("ld.acquire.sys.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ uint32_t ld_volatile(const uint32_t* p) { return *reinterpret_cast<const volatile uint32_t*>(p); }
__device__ __forceinline__ void st_volatile(uint32_t* p, uint32_t v) { *reinterpret_cast<volatile uint32_t*>(p) = v; }
// A whole SQE as four volatile 16-byte stores (never merged, split or elided; 16-byte
// stores also make four PCIe writes instead of sixteen when the SQ is in host memory).
__device__ __forceinline__ void store_sqe(Sqe64* dst, const Sqe64& s) {
#pragma unroll
  for (int i = 0; i < 4; ++i)
    asm volatile("st.volatile.v4.u32 [%0], {%1, %2, %3, %4};" ::"l"(dst->dw + 4 * i), "r"(s.dw[4 * i]),
                 "r"(s.dw[4 * i + 1]), "r"(s.dw[4 * i + 2]), "r"(s.dw[4 * i + 3])
                 : "memory");
}

// ---- building commands ----------------------------------------------------------------
namespace opc {
inline constexpr uint8_t kFlush = 0x00, kWrite = 0x01, kRead = 0x02;
}

// Read/Write of nlb blocks (a count, >= 1) at slba. PRPs are filled separately.
__device__ __forceinline__ void make_rw(Sqe64& s, uint8_t opcode, uint32_t nsid, uint64_t slba, uint32_t nlb) {
#pragma unroll
  for (int i = 0; i < 16; ++i) s.dw[i] = 0;
  s.dw[0] = opcode;  // FUSE 0, PSDT 0 (PRPs); the CID goes into bits 31:16 at submission
  s.dw[1] = nsid;
  s.dw[10] = uint32_t(slba);
  s.dw[11] = uint32_t(slba >> 32);
  s.dw[12] = (nlb - 1) & 0xFFFFu;
}
__device__ __forceinline__ void set_slba(Sqe64& s, uint64_t slba) {
  s.dw[10] = uint32_t(slba);
  s.dw[11] = uint32_t(slba >> 32);
}
__device__ __forceinline__ void set_prp(Sqe64& s, uint64_t prp1, uint64_t prp2) {
  s.dw[6] = uint32_t(prp1);
  s.dw[7] = uint32_t(prp1 >> 32);
  s.dw[8] = uint32_t(prp2);
  s.dw[9] = uint32_t(prp2 >> 32);
}

// Bus address of byte `off` of a buffer described by a table of 64 KiB GPU pages
// (DmaBuffer::iova on the device: table[i] is the bus address of page i).
__device__ __forceinline__ uint64_t table_iova(const uint64_t* table, uint64_t off) {
  return table[off >> 16] + (off & 0xFFFFu);
}

// PRP1/PRP2 for bytes [off, off + len) of a buffer given by its 64 KiB bus table, with
// controller memory pages of 1 << mps_shift (<= 64 KiB). Beyond two pages PRP2 points
// to `list` (one page, written here with volatile stores; its bus address list_bus), so
// at most mps/8 more pages: 2 MiB with 4 KiB pages. Same rules as nvme::build_prp.
// The list stores are ordered before the doorbell by the same fence as the SQE.
__device__ __forceinline__ bool build_prp(Sqe64& s, const uint64_t* table, uint64_t off, uint32_t len,
                                          uint32_t mps_shift, uint64_t* list, uint64_t list_bus) {
  const uint64_t page = uint64_t(1) << mps_shift;
  const uint64_t prp1 = table_iova(table, off);
  if (prp1 & 3u) return false;
  const uint64_t first = page - (prp1 & (page - 1));
  if (len <= first) {
    set_prp(s, prp1, 0);
    return true;
  }
  if (len <= first + page) {
    set_prp(s, prp1, table_iova(table, off + first));
    return true;
  }
  const uint64_t n = (len - first + page - 1) >> mps_shift;
  if (n > (page >> 3)) return false;  // one list page, no chaining
  volatile uint64_t* l = list;
  for (uint64_t i = 0; i < n; ++i) l[i] = table_iova(table, off + first + (i << mps_shift));
  set_prp(s, prp1, list_bus);
  return true;
}

// ---- the block-collective queue -------------------------------------------------------
template <unsigned kMaxThreads = 1024>
struct BlockQueue {
  QueueView q;
  uint32_t sq_tail, cq_head, phase, round, broken;
  uint32_t placed;    // SQ slots taken this round
  uint32_t inflight;  // commands rung this round
  uint32_t timeouts;  // pollers that gave up this round
  uint32_t spurious;  // CQEs naming no outstanding command of this round
  uint32_t stop;      // scratch flag broadcast by thread 0 (the benchmark's stop)
  unsigned long long submitted, completed, n_timeouts, n_spurious;
  uint32_t result[kMaxThreads];  // status by thread (cid & 0x3FF)
  uint32_t dw0[kMaxThreads];
  uint32_t got[kMaxThreads];     // a CQE for this thread's command was seen this round
};

// Loads the queue's state into the block. Block-collective.
template <unsigned N>
__device__ void bq_open(BlockQueue<N>& b, const QueueView& q) {
  if (threadIdx.x == 0) {
    b.q = q;
    const QueueState& s = *q.state;
    b.sq_tail = s.sq_tail;
    b.cq_head = s.cq_head;
    b.phase = s.phase;
    b.round = s.round;
    b.broken = s.broken || blockDim.x > N || blockDim.x + 1 > q.depth;
    b.submitted = b.completed = b.n_timeouts = b.n_spurious = 0;
    b.stop = 0;
  }
  __syncthreads();
}

// Stores the state back (for the next launch) and adds this launch's counters.
template <unsigned N>
__device__ void bq_close(BlockQueue<N>& b) {
  __syncthreads();
  if (threadIdx.x == 0) {
    QueueState& s = *b.q.state;
    s.sq_tail = b.sq_tail;
    s.cq_head = b.cq_head;
    s.phase = b.phase;
    s.round = b.round;
    s.broken = b.broken;
    s.submitted += b.submitted;
    s.completed += b.completed;
    s.timeouts += b.n_timeouts;
    s.spurious += b.n_spurious;
  }
}

// Block-collective submission: threads with `active` place `cmd` (its CID is set here)
// in the SQ; one doorbell write covers the round. Returns whether this thread's command
// was submitted (false when inactive or the queue is broken).
template <unsigned N>
__device__ bool bq_submit(BlockQueue<N>& b, Sqe64& cmd, bool active) {
  const unsigned t = threadIdx.x;
  if (t == 0) b.placed = 0;
  __syncthreads();
  const bool go = active && !b.broken;
  b.got[t] = 0;
  b.result[t] = go ? st::kLost : (active ? st::kQueueBroken : st::kNotSubmitted);
  b.dw0[t] = 0;
  if (go) {
    uint32_t pos = atomicAdd(&b.placed, 1u);
    uint32_t slot = b.sq_tail + pos;
    if (slot >= b.q.depth) slot -= b.q.depth;
    cmd.dw[0] = (cmd.dw[0] & 0xFFFFu) | (((b.round & 63u) << 10 | t) << 16);
    store_sqe(b.q.sq + slot, cmd);  // (1) volatile stores of this thread's SQE
  }
  __syncthreads();  // (1) every SQE store happens-before thread 0's doorbell
  if (t == 0) {
    const uint32_t n = b.placed;
    b.inflight = n;
    b.timeouts = 0;
    b.spurious = 0;
    if (n) {
      uint32_t tail = b.sq_tail + n;
      if (tail >= b.q.depth) tail -= b.q.depth;
      b.sq_tail = tail;
      __threadfence_system();      // (1) cumulative: all SQEs before the doorbell, system-wide
      st_volatile(b.q.sq_db, tail);  // (4) SQ tail doorbell
      b.submitted += n;
    }
  }
  __syncthreads();
  return go;
}

// Block-collective completion of the round begun by bq_submit(): returns this thread's
// status (st::kOk, an NVMe status field, or a host outcome); dw0 gets CQE dword 0.
template <unsigned N>
__device__ uint32_t bq_complete(BlockQueue<N>& b, const PollConfig& pc, uint32_t* dw0 = nullptr) {
  const unsigned t = threadIdx.x;
  const uint32_t n = b.inflight, depth = b.q.depth;
  if (t < n) {
    uint32_t idx = b.cq_head + t;
    uint32_t expect = b.phase;
    if (idx >= depth) {
      idx -= depth;
      expect ^= 1u;  // this entry is on the next pass of the CQ
    }
    const Cqe16* e = b.q.cq + idx;
    const long long t0 = clock64();
    uint32_t dw3 = 0;
    bool seen = false;
    for (;;) {
      dw3 = ld_acquire_sys(&e->dw[3]);  // (2) phase tag first, with acquire
      if (((dw3 >> 16) & 1u) == expect) {
        seen = true;
        break;
      }
      if (pc.timeout_cycles && clock64() - t0 > pc.timeout_cycles) break;
      if (pc.backoff_ns) __nanosleep(pc.backoff_ns);
    }
    if (!seen) {
      atomicAdd(&b.timeouts, 1u);
    } else {
      const uint32_t d0 = ld_volatile(&e->dw[0]);  // (2) payload only after the phase tag
      const uint32_t cid = dw3 & 0xFFFFu, owner = cid & 0x3FFu;
      if ((cid >> 10) != (b.round & 63u) || owner >= blockDim.x || atomicExch(&b.got[owner], 1u) != 0) {
        atomicAdd(&b.spurious, 1u);
      } else {
        b.result[owner] = dw3 >> 17;  // status field without the phase tag
        b.dw0[owner] = d0;
      }
    }
  }
  __syncthreads();  // (3) every poller is done with its entry
  if (t == 0 && n) {
    if (b.timeouts) {
      b.broken = 1;  // where the controller stands is unknown: the host must recreate the queue
      b.n_timeouts += b.timeouts;
    } else {
      uint32_t h = b.cq_head + n;
      if (h >= depth) {
        h -= depth;
        b.phase ^= 1u;
      }
      b.cq_head = h;
      st_volatile(b.q.cq_db, h);  // (3)(4) CQ head doorbell
    }
    b.n_spurious += b.spurious;
    b.completed += n - b.timeouts;
    ++b.round;
  }
  __syncthreads();
  uint32_t r = b.result[t];
  if (r == st::kLost && b.timeouts) r = st::kTimeout;
  if (dw0) *dw0 = b.dw0[t];
  return r;
}

}  // namespace aisio::gpu
