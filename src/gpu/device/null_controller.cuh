// A GPU-resident null NVMe controller: a kernel that plays the controller side of
// queue pairs in device memory and completes every command at once, successfully,
// moving no data. With it, the device library's own ceiling (commands per second the
// GPU threads can submit and reap) is visible, free of any host thread or PCIe cost.
//
// One warp serves one queue pair: it polls the SQ tail doorbell (a word in device
// memory) with an acquire load, fetches up to 32 new SQEs (one per lane), and posts
// their CQEs as a real controller does: dw0..dw2 first, then a fence, then dw3 with
// the command id, the status and the new phase tag. It never overwrites a CQ entry the
// host side has not released (CQ head doorbell).
#pragma once
#include "gpu/device/nvme_queue.cuh"

namespace aisio::gpu {

__device__ __forceinline__ uint32_t ld_acquire_gpu(const uint32_t* p) {
  uint32_t v;
  asm volatile("ld.acquire.gpu.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// static: a header-only kernel, one copy per translation unit that includes it.
static __global__ void null_controller_kernel(NullControllerParams p) {
  const unsigned lane = threadIdx.x & 31u;
  const unsigned w = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  if (w >= p.count) return;
  const QueueView q = p.queues[w];
  uint32_t head = 0, cq_tail = 0, phase = 1;  // device-side queue state, identical in every lane
  unsigned long long served = 0;
  if (lane == 0) atomicAdd(const_cast<int*>(reinterpret_cast<volatile int*>(p.running)), 1);
  for (uint32_t spin = 0;; ++spin) {
    // Lane 0 reads the shared words and broadcasts them, so every lane keeps the same
    // view; __syncwarp() orders lane 0's acquire before the other lanes' SQE loads.
    uint32_t tail = 0, cq_head = 0, stop = 0;
    if (lane == 0) {
      if ((spin & 1023u) == 0) stop = *p.stop;
      tail = ld_acquire_gpu(q.sq_db);  // SQEs written before the doorbell are visible
      cq_head = ld_volatile(q.cq_db);
    }
    __syncwarp();
    stop = __shfl_sync(0xFFFFFFFFu, stop, 0);
    if (stop) break;
    tail = __shfl_sync(0xFFFFFFFFu, tail, 0);
    cq_head = __shfl_sync(0xFFFFFFFFu, cq_head, 0);
    uint32_t pending = tail >= head ? tail - head : tail + q.depth - head;
    if (pending == 0) continue;
    const uint32_t used = cq_tail >= cq_head ? cq_tail - cq_head : cq_tail + q.depth - cq_head;
    const uint32_t room = q.depth - 1 - used;
    uint32_t k = min(min(pending, room), 32u);
    if (k == 0) continue;
    if (lane < k) {
      uint32_t s = head + lane;
      if (s >= q.depth) s -= q.depth;
      const uint32_t dw0 = ld_volatile(&q.sq[s].dw[0]);
      uint32_t c = cq_tail + lane, ph = phase;
      if (c >= q.depth) {
        c -= q.depth;
        ph ^= 1u;
      }
      uint32_t new_head = head + k;
      if (new_head >= q.depth) new_head -= q.depth;
      Cqe16* e = q.cq + c;
      st_volatile(&e->dw[0], 0);
      st_volatile(&e->dw[1], 0);
      st_volatile(&e->dw[2], (uint32_t(q.qid) << 16) | new_head);  // SQID, SQHD
      __threadfence();  // payload before the phase tag (the poller reads it after an acquire)
      st_volatile(&e->dw[3], (dw0 >> 16) | (ph << 16));  // CID, phase, status 0
    }
    head += k;
    if (head >= q.depth) head -= q.depth;
    cq_tail += k;
    if (cq_tail >= q.depth) {
      cq_tail -= q.depth;
      phase ^= 1u;
    }
    served += k;
    __syncwarp();
  }
  if (lane == 0) p.served[w] = served;
}

}  // namespace aisio::gpu
