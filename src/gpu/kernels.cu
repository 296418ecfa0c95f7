// The gpu library's kernels and their launch functions (see kernels.hpp).
#include "gpu/kernels.hpp"

#include "gpu/device/null_controller.cuh"
#include "gpu/device/nvme_queue.cuh"

namespace aisio::gpu::kern {

namespace {

__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// One block per queue, one thread per slot: submit/complete rounds until stopped.
__global__ void __launch_bounds__(1024) run_kernel(RunParams p) {
  __shared__ BlockQueue<1024> b;
  const unsigned qi = blockIdx.x, t = threadIdx.x;
  bq_open(b, p.queues[qi]);
  const QueueIo io = p.io[qi];
  Sqe64 cmd;
  make_rw(cmd, p.opc, io.nsid, 0, io.nlb);
  const uint64_t* prp = p.prps + (size_t(qi) * blockDim.x + t) * 2;
  set_prp(cmd, prp[0], prp[1]);
  // A small LCG per thread, seeded by the host seed and the global thread index.
  uint64_t x = p.seed ^ ((uint64_t(qi) * blockDim.x + t + 1) * 0x9E3779B97F4A7C15ull);
  const uint64_t seq0 = uint64_t(qi) * 7919u;
  unsigned long long ios = 0, errors = 0, rounds = 0;
  uint32_t first_error = 0;
  unsigned long long t0 = 0;
  if (t == 0) t0 = global_ns();
  for (;;) {
    uint64_t blk;
    if (p.random) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      blk = __umul64hi(x, io.blocks);
    } else {
      blk = (seq0 + rounds * blockDim.x + t) % io.blocks;
    }
    set_slba(cmd, io.region_lba + blk * io.nlb);
    bq_submit(b, cmd, true);
    // Between the two barriers of a round: thread 0 samples the host-mapped stop flag
    // while the commands are in flight (everyone reads b.stop after bq_complete).
    if (t == 0 && (rounds % p.stop_every) == p.stop_every - 1) b.stop = *p.stop;
    uint32_t s = bq_complete(b, p.poll);
    ++rounds;
    if (s == st::kOk) {
      ++ios;
    } else {
      ++errors;
      if (!first_error) first_error = s;
    }
    // Block-uniform exit: stop flag, a broken queue, or any error in this round.
    if (__syncthreads_or(s != st::kOk) || b.stop || b.broken) break;
  }
  atomicAdd(&p.out[qi].ios, ios);
  atomicAdd(&p.out[qi].errors, errors);
  if (first_error) atomicCAS(&p.out[qi].first_error, 0u, first_error);
  if (t == 0) {
    p.out[qi].rounds = rounds;
    p.out[qi].t_start = t0;
    p.out[qi].t_end = global_ns();
  }
  bq_close(b);
}

__global__ void __launch_bounds__(1024) list_kernel(ListParams p) {
  __shared__ BlockQueue<1024> b;
  const unsigned t = threadIdx.x;
  bq_open(b, p.queues[blockIdx.x]);
  const size_t slot = size_t(blockIdx.x) * blockDim.x + t;
  uint64_t* list = p.lists + (slot << (p.mps_shift - 3));
  for (;;) {
    const uint32_t idx = atomicAdd(p.next, 1u);
    const bool active = idx < p.n;
    if (!__syncthreads_or(active)) break;
    Sqe64 cmd;
    bool ok = false;
    if (active) {
      const ListCommand c = p.cmds[idx];
      make_rw(cmd, p.opc, p.nsid, c.slba, c.nlb);
      ok = build_prp(cmd, p.table, c.dst, c.len, p.mps_shift, list, p.list_bus[slot]);
    }
    bq_submit(b, cmd, active && ok);
    const uint32_t s = bq_complete(b, p.poll);
    if (active) p.status[idx] = ok ? s : st::kPrpError;
    if (b.broken) break;  // uniform: read after the round's last barrier
  }
  bq_close(b);
}

__device__ __forceinline__ uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// One block per file: every 8-byte word of the file compared with the regenerated
// content (fil/content.hpp: byte o is byte o % 8 of splitmix64(key + (o / 8 + 1) * golden);
// outside the data segments of a sparse file, zeros).
__global__ void verify_kernel(const uint8_t* buf, const FileDesc* files, const uint64_t* segs, FileCheck* out) {
  const FileDesc f = files[blockIdx.x];
  if (!(f.flags & kHasKey)) return;
  const uint64_t words = (f.size + 7) / 8;
  const uint64_t* w64 = reinterpret_cast<const uint64_t*>(buf + f.base);
  unsigned long long bad = 0, first = ~0ull;
  for (uint64_t w = threadIdx.x; w < words; w += blockDim.x) {
    const uint64_t got = w64[w];
    uint64_t exp = splitmix64(f.key + (w + 1) * 0x9E3779B97F4A7C15ull);
    const uint64_t o = w * 8;
    uint64_t mask = o + 8 <= f.size ? ~0ull : ((1ull << (8 * (f.size - o))) - 1);
    if (f.flags & kSparse) {
      uint64_t in = 0;
      for (int b = 0; b < 8; ++b)
        for (uint32_t i = 0; i < f.seg_count; ++i) {
          const uint64_t so = segs[2 * (f.seg_first + i)], sl = segs[2 * (f.seg_first + i) + 1];
          if (o + b >= so && o + b < so + sl) {
            in |= 0xFFull << (8 * b);
            break;
          }
        }
      exp &= in;
    }
    const uint64_t diff = (got ^ exp) & mask;
    if (diff) {
      ++bad;
      first = min(first, (unsigned long long)(o + (__ffsll((long long)diff) - 1) / 8));
    }
  }
  if (bad) {
    atomicAdd(&out[blockIdx.x].bad_words, bad);
    atomicMin(&out[blockIdx.x].first, first);
  }
}

}  // namespace

cudaError_t launch_run(const RunParams& p, uint32_t queues, uint32_t threads, cudaStream_t s) {
  run_kernel<<<queues, threads, 0, s>>>(p);
  return cudaGetLastError();
}

cudaError_t run_blocks_per_sm(uint32_t threads, int* blocks) {
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks, run_kernel, int(threads), 0);
}

cudaError_t launch_list(const ListParams& p, uint32_t queues, uint32_t threads, cudaStream_t s) {
  list_kernel<<<queues, threads, 0, s>>>(p);
  return cudaGetLastError();
}

cudaError_t launch_null_controller(const NullControllerParams& p, cudaStream_t s) {
  const uint32_t threads = 128;
  null_controller_kernel<<<(p.count * 32 + threads - 1) / threads, threads, 0, s>>>(p);
  return cudaGetLastError();
}

cudaError_t launch_verify(const uint8_t* buf, const FileDesc* files, const uint64_t* segs, FileCheck* out,
                          uint32_t nfiles, cudaStream_t s) {
  if (nfiles) verify_kernel<<<nfiles, 256, 0, s>>>(buf, files, segs, out);
  return cudaGetLastError();
}

}  // namespace aisio::gpu::kern
