// Byte-addressed read access to a device or image: what the XFS decoder and the
// translator's verification read through. The NVMe driver provides one later.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/fd.hpp"

namespace aisio::extents {

class BlockReader {
 public:
  virtual ~BlockReader() = default;
  // Reads exactly `len` bytes at `byte_offset`, or throws aisio::Error (Errc::io
  // for a range past the end, Errc::system for a failed read).
  virtual void read(uint64_t byte_offset, void* buf, size_t len) = 0;
  // Size in bytes.
  virtual uint64_t size() = 0;
};

// A regular file (image) or a block device, read with pread. The size of a block
// device comes from BLKGETSIZE64.
class FileBlockReader : public BlockReader {
 public:
  explicit FileBlockReader(const std::string& path);
  void read(uint64_t byte_offset, void* buf, size_t len) override;
  uint64_t size() override { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  Fd fd_;
  uint64_t size_ = 0;
};

// A window [offset, offset + size) of another reader: a partition of a whole-disk
// image, or a file system at an offset inside a bigger file.
class OffsetBlockReader : public BlockReader {
 public:
  // size == UINT64_MAX: to the end of `base`.
  OffsetBlockReader(std::shared_ptr<BlockReader> base, uint64_t offset, uint64_t size = UINT64_MAX);
  void read(uint64_t byte_offset, void* buf, size_t len) override;
  uint64_t size() override { return size_; }

 private:
  std::shared_ptr<BlockReader> base_;
  uint64_t offset_;
  uint64_t size_;
};

// Bytes in memory (tests, fuzzing). Does not copy: `data` must outlive the reader.
class MemoryBlockReader : public BlockReader {
 public:
  explicit MemoryBlockReader(std::span<const uint8_t> data) : data_(data) {}
  void read(uint64_t byte_offset, void* buf, size_t len) override;
  uint64_t size() override { return data_.size(); }

 private:
  std::span<const uint8_t> data_;
};

// Opens `path` (image or block device); offset > 0 selects a window starting there.
std::shared_ptr<BlockReader> open_block_reader(const std::string& path, uint64_t offset = 0);

}  // namespace aisio::extents
