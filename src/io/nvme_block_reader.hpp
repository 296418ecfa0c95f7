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

class NvmeBlockReader : public extents::BlockReader {
 public:
  // Through any queue pair source (a controller of this process or homid: backends::target_of).
  // offset: byte offset of the window inside the namespace (a partition start).
  explicit NvmeBlockReader(backends::UnvmeTarget dev, uint64_t offset = 0, size_t bounce_bytes = 1 << 20);
  ~NvmeBlockReader() override;
  void read(uint64_t byte_offset, void* buf, size_t len) override;
  uint64_t size() override { return size_; }
  uint32_t lba_size() const { return dev_.lba_size; }
  uint64_t commands() const;  // NVMe Read commands so far

 private:
  backends::UnvmeTarget dev_;
  uint64_t offset_;
  uint64_t size_;
  mutable std::mutex mu_;
  std::unique_ptr<nvme::QueuePair> qp_;
  DmaBuffer bounce_;
  uint64_t commands_ = 0;
};

}  // namespace aisio::io
