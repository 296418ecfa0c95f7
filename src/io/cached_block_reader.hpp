// A read cache in front of the XFS decoder's BlockReader (internal to src/io). The
// decoder caches inodes and extent maps but reads directory blocks again for every
// lookup and each inode on its own: resolving 300 files of one directory meant ~1200
// synchronous metadata reads in the reading thread. Reads of at most kPage bytes are
// served from aligned kPage pages (neighbouring inodes and directory blocks share one
// device read), kept for the reader's lifetime under the decoder's own assumption that
// the device does not change while it is open (extents/xfs.hpp); past kMaxBytes the
// cache starts over. Larger reads (file data) go straight through.
// Not thread-safe: XfsSource calls it under its lock.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "extents/block_reader.hpp"

namespace aisio::io {

class CachedBlockReader final : public extents::BlockReader {
 public:
  static constexpr size_t kPage = 64 << 10;
  static constexpr size_t kMaxBytes = 16 << 20;

  explicit CachedBlockReader(std::shared_ptr<extents::BlockReader> inner) : inner_(std::move(inner)) {}
  void read(uint64_t byte_offset, void* buf, size_t len) override;
  uint64_t size() override { return inner_->size(); }
  uint64_t hits() const { return hits_; }

 private:
  const std::vector<uint8_t>& page(uint64_t index);

  std::shared_ptr<extents::BlockReader> inner_;
  std::map<uint64_t, std::vector<uint8_t>> pages_;
  size_t bytes_ = 0;
  uint64_t hits_ = 0;
};

}  // namespace aisio::io
