#include "io/cached_block_reader.hpp"

#include <cstring>

namespace aisio::io {

void CachedBlockReader::read(uint64_t byte_offset, void* buf, size_t len) {
  if (len > kMaxEntry) {
    inner_->read(byte_offset, buf, len);
    return;
  }
  const auto key = std::make_pair(byte_offset, len);
  if (auto it = blocks_.find(key); it != blocks_.end()) {
    ++hits_;
    std::memcpy(buf, it->second.data(), len);
    return;
  }
  ++misses_;
  inner_->read(byte_offset, buf, len);  // throws before anything is kept
  if (bytes_ + len > kMaxBytes) {
    blocks_.clear();
    bytes_ = 0;
  }
  const auto* p = static_cast<const uint8_t*>(buf);
  blocks_.emplace(key, std::vector<uint8_t>(p, p + len));
  bytes_ += len;
}

}  // namespace aisio::io
