// GPU-initiated execution of a list of read or write commands: one block per queue of a
// QueueSet, each thread takes the next command of the list, builds its PRPs on the GPU
// from the buffer's 64 KiB bus table (a PRP list page per thread when a command spans
// more than two controller pages), and the block submits and completes in rounds
// (device/nvme_queue.cuh). Used by `aisio fil run --paths gpu` and the tests.
#pragma once
#include <cstdint>
#include <vector>

#include "gpu/cuda.hpp"
#include "gpu/kernels.hpp"
#include "gpu/queues.hpp"
#include "memory/dma.hpp"

namespace aisio::gpu {

// {slba, nlb (a count), len (bytes = nlb x LBA size), dst (byte offset in the data
// buffer, dword aligned)}
using ListCommand = kern::ListCommand;

struct ListResult {
  double seconds = 0;                 // kernel time (events)
  uint64_t failed = 0;                // commands whose status is not st::kOk
  uint32_t first_status = 0;          // of the first failed command in list order
  uint64_t first_failed = UINT64_MAX; // its index
  std::vector<uint32_t> status;       // per command (st:: words; 0xFFFFFFFF: never taken)
  uint64_t timeouts = 0, spurious = 0;
};

class CommandRunner {
 public:
  // threads: per queue (<= qs.depth() - 1).
  CommandRunner(QueueSet& qs, uint32_t threads);
  ~CommandRunner();
  CommandRunner(const CommandRunner&) = delete;
  CommandRunner& operator=(const CommandRunner&) = delete;

  // `buf`: GPU memory from qs.gpu().data_heap(), allocated 64 KiB aligned.
  ListResult run(uint8_t opc, uint32_t nsid, const std::vector<ListCommand>& cmds, const DmaBuffer& buf,
                 double timeout_ms = 10000);

 private:
  QueueSet& qs_;
  uint32_t threads_;
  DmaBuffer lists_;            // one controller page per (queue, thread)
  DevPtr<uint64_t> list_bus_dev_;
  cudaStream_t stream_ = nullptr;
};

}  // namespace aisio::gpu
