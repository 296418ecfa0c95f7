// The unvme path: files read by our NVMe driver, CPU-initiated. Each file's extents
// come from an ExtentSource (FIEMAP, the XFS decoder, homid); its byte ranges are
// translated to LBA runs (holes and unwritten extents zero-filled without I/O), and
// the runs of up to qd io_size chunks are in flight on one queue pair per thread,
// submitted in batches with one doorbell write per batch and reaped by polling.
#pragma once
#include <memory>
#include <string>

#include "backends/unvme.hpp"
#include "io/engine.hpp"
#include "io/extent_source.hpp"
#include "memory/dma.hpp"
#include "nvme/controller.hpp"
#include "target/target.hpp"

namespace aisio::io {

// dev: queue pairs and DMA memory straight from a Controller of this process, or from
// homid (backends::target_of).
std::unique_ptr<FileBackend> make_unvme_path(backends::UnvmeTarget dev, std::shared_ptr<ExtentSource> extents,
                                             const ReadOptions& o, std::string name = "unvme");

}  // namespace aisio::io
