// The unvme path over NVMe/TCP: files read by our NVMe/TCP initiator, extents from an
// ExtentSource (the XFS decoder reading through a TcpBlockReader), LBA runs read as
// commands on one tcp::QueuePair per thread straight into the chunk's host buffer.
// Data lands in host memory (the kernel's socket layer copies it there).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/tcp.hpp"
#include "extents/block_reader.hpp"
#include "io/engine.hpp"
#include "io/extent_source.hpp"

namespace aisio::io {

std::unique_ptr<FileBackend> make_tcp_path(backends::TcpTarget dev, std::shared_ptr<ExtentSource> extents,
                                           const ReadOptions& o, std::string name = "unvme");

// Byte-addressed synchronous reads of one namespace over NVMe/TCP (a queue of its own),
// for the XFS decoder. Serialised by a mutex, as NvmeBlockReader.
class TcpBlockReader : public extents::BlockReader {
 public:
  explicit TcpBlockReader(backends::TcpTarget dev, uint64_t offset = 0);
  void read(uint64_t byte_offset, void* buf, size_t len) override;
  uint64_t size() override { return size_; }

 private:
  backends::TcpTarget dev_;
  uint64_t offset_;
  uint64_t size_;
  std::mutex mu_;
  std::unique_ptr<tcp::QueuePair> qp_;
  std::vector<uint8_t> bounce_;
};

}  // namespace aisio::io
