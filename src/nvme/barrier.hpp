// Memory ordering between the host CPU and an NVMe controller.
//
// Two points matter on the I/O path (NVMe 2.0 section 4.1 / 4.2):
//  * SQE stores -> SQ tail doorbell: the controller may fetch the entry as soon as it
//    sees the doorbell, so the entry must be globally visible first: dma_wmb().
//  * CQE phase tag -> CQE payload: the phase tag is written last by the controller;
//    once we observe the new phase we must not read dw0/cid/sqhd from before it:
//    dma_rmb().
// On x86-64 (TSO) stores are not reordered with older stores and loads not with older
// loads, and BAR0 is mapped uncached (resource0, not resource0_wc), so both are compiler
// barriers; on AArch64 they are the outer-shareable DMB forms Linux uses for DMA.
// The software controller polls the same shared memory from another CPU thread, where
// these are exactly release/acquire fences.
#pragma once

namespace aisio::nvme {

inline void compiler_barrier() { asm volatile("" ::: "memory"); }

inline void dma_wmb() {
#if defined(__x86_64__)
  compiler_barrier();
#elif defined(__aarch64__)
  asm volatile("dmb oshst" ::: "memory");
#else
  __atomic_thread_fence(__ATOMIC_RELEASE);
#endif
}

inline void dma_rmb() {
#if defined(__x86_64__)
  compiler_barrier();
#elif defined(__aarch64__)
  asm volatile("dmb oshld" ::: "memory");
#else
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
#endif
}

}  // namespace aisio::nvme
