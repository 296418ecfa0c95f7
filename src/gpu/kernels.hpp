// The gpu library's kernels, behind plain launch functions so that host code (which
// uses fmt and the rest of aisio) compiles with g++ and only kernels.cu goes through
// nvcc. Kernels use the device library (device/nvme_queue.cuh).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "gpu/device/nvme_types.hpp"

namespace aisio::gpu::kern {

// ---- cuda-run: one block per queue, one thread per slot, rounds until stopped ----------
struct QueueIo {
  uint64_t region_lba;  // first LBA of the region
  uint64_t blocks;      // region length in I/Os
  uint32_t nlb;         // LBAs per I/O
  uint32_t nsid;
};
struct QueueOut {
  unsigned long long ios, errors, rounds;
  unsigned long long t_start, t_end;  // %globaltimer (ns)
  uint32_t first_error;
  uint32_t pad;
};
struct RunParams {
  const QueueView* queues;
  const QueueIo* io;
  const uint64_t* prps;  // [queue][thread][2]
  uint8_t opc;
  bool random;
  uint64_t seed;
  const volatile int* stop;  // host-mapped
  uint32_t stop_every;       // rounds between reads of *stop
  PollConfig poll;
  QueueOut* out;
};
cudaError_t launch_run(const RunParams& p, uint32_t queues, uint32_t threads, cudaStream_t s);
cudaError_t run_blocks_per_sm(uint32_t threads, int* blocks);

// ---- command list: threads take the next command; PRPs built on the GPU --------------
struct ListCommand {
  uint64_t slba;
  uint32_t nlb;
  uint32_t len;
  uint64_t dst;
};
struct ListParams {
  const QueueView* queues;
  const ListCommand* cmds;
  uint32_t n;
  uint32_t nsid;
  uint8_t opc;
  uint32_t mps_shift;
  const uint64_t* table;     // 64 KiB bus table of the data buffer
  uint64_t* lists;           // PRP list pages, one per (queue, thread)
  const uint64_t* list_bus;  // their bus addresses
  unsigned int* next;
  uint32_t* status;          // per command
  PollConfig poll;
};
cudaError_t launch_list(const ListParams& p, uint32_t queues, uint32_t threads, cudaStream_t s);

// ---- the GPU-resident null controller (one warp per queue) ------------------------------
cudaError_t launch_null_controller(const NullControllerParams& p, cudaStream_t s);

// ---- fil: every byte of each file against its regenerated content ------------------------
inline constexpr uint32_t kHasKey = 1, kSparse = 2;
struct FileDesc {
  uint64_t base;  // byte offset in the buffer (8-byte aligned)
  uint64_t size;
  uint64_t key;
  uint32_t seg_first, seg_count;
  uint32_t flags;
  uint32_t pad;
};
struct FileCheck {
  unsigned long long bad_words;
  unsigned long long first;  // first differing byte; ~0 when none
};
cudaError_t launch_verify(const uint8_t* buf, const FileDesc* files, const uint64_t* segs, FileCheck* out,
                          uint32_t nfiles, cudaStream_t s);

}  // namespace aisio::gpu::kern
