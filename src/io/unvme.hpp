// The unvme path: files read by our NVMe driver, CPU-initiated. Each file's extents
// come from an ExtentSource (FIEMAP, the XFS decoder, homid); its byte ranges are
// translated to LBA runs (holes and unwritten extents zero-filled without I/O), and
// the runs of up to qd io_size chunks are in flight on one queue pair per thread,
// submitted in batches with one doorbell write per batch and reaped by polling.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "io/engine.hpp"
#include "io/extent_source.hpp"
#include "memory/dma.hpp"
#include "nvme/controller.hpp"
#include "target/target.hpp"

namespace aisio::io {

// Where the unvme path gets its queue pairs and DMA memory: straight from a Controller
// (this process owns the controller), or from homid (a client of the daemon).
struct NvmeAccess {
  std::string describe;                  // "embedded (image /tmp/x.img)", "0000:01:00.0", ...
  uint32_t nsid = 1;
  uint32_t lba_size = 512;
  uint64_t ns_bytes = 0;                 // namespace size
  std::shared_ptr<DmaHeap> dma;          // data buffers come from here
  std::function<std::unique_ptr<nvme::QueuePair>(const nvme::QueueOptions&)> make_queue_pair;
  uint32_t max_queue_entries = 1024;     // CAP.MQES + 1
  std::shared_ptr<void> keep;            // what the queue pairs need alive
};
NvmeAccess access_of(std::shared_ptr<nvme::Controller> ctrl, uint32_t nsid = 1);
NvmeAccess access_of(std::shared_ptr<target::Target> t, uint32_t nsid = 1);

std::unique_ptr<Path> make_unvme_path(NvmeAccess dev, std::shared_ptr<ExtentSource> extents, const EngineOptions& o,
                                      std::string name = "unvme");

}  // namespace aisio::io
