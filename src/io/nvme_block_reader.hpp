// A BlockReader over our NVMe driver: byte-addressed reads of one namespace, done as
// NVMe Read commands on a queue pair of its own through a DMA bounce buffer. This is
// how the XFS decoder reads an unmounted file system that only our driver can reach.
//
// Reads are synchronous and serialised by a mutex (the decoder reads metadata a block
// at a time; the bulk data goes through the unvme engine instead).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>

#include "extents/block_reader.hpp"
#include "memory/dma.hpp"
#include "io/unvme.hpp"
#include "nvme/controller.hpp"

namespace aisio::io {

struct NvmeReaderStats {
  uint64_t reads = 0;     // read() calls
  uint64_t commands = 0;  // NVMe Read commands
  uint64_t bytes = 0;     // bytes moved by the controller
};

class NvmeBlockReader : public extents::BlockReader {
 public:
  // offset: byte offset of the window inside the namespace (a partition start).
  NvmeBlockReader(std::shared_ptr<nvme::Controller> ctrl, uint32_t nsid = 1, uint64_t offset = 0,
                  size_t bounce_bytes = 1 << 20);
  // Through any queue pair source (a controller of this process, or homid).
  explicit NvmeBlockReader(NvmeAccess dev, uint64_t offset = 0, size_t bounce_bytes = 1 << 20);
  ~NvmeBlockReader() override;
  void read(uint64_t byte_offset, void* buf, size_t len) override;
  uint64_t size() override { return size_; }
  uint32_t lba_size() const { return lba_; }
  NvmeReaderStats stats() const;

 private:
  NvmeAccess dev_;
  uint32_t nsid_;
  uint64_t offset_;
  uint32_t lba_;
  uint64_t ns_bytes_;
  uint64_t size_;
  mutable std::mutex mu_;
  std::unique_ptr<nvme::QueuePair> qp_;
  DmaBuffer bounce_;
  NvmeReaderStats stats_;
};

}  // namespace aisio::io
