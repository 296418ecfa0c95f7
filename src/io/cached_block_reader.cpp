#include "io/cached_block_reader.hpp"

#include <algorithm>
#include <cstring>

namespace aisio::io {

const std::vector<uint8_t>& CachedBlockReader::page(uint64_t index) {
  if (auto it = pages_.find(index); it != pages_.end()) {
    ++hits_;
    return it->second;
  }
  const uint64_t start = index * kPage;
  const uint64_t end = std::min<uint64_t>(start + kPage, inner_->size());
  std::vector<uint8_t> p(end > start ? end - start : 0);
  inner_->read(start, p.data(), p.size());  // throws before anything is kept
  if (bytes_ + p.size() > kMaxBytes) {
    pages_.clear();
    bytes_ = 0;
  }
  bytes_ += p.size();
  return pages_.emplace(index, std::move(p)).first->second;
}

void CachedBlockReader::read(uint64_t byte_offset, void* buf, size_t len) {
  // Large reads, and ranges past the end (the inner reader's error), go straight through.
  if (len > kPage || byte_offset > inner_->size() || len > inner_->size() - byte_offset) {
    inner_->read(byte_offset, buf, len);
    return;
  }
  auto* out = static_cast<uint8_t*>(buf);
  while (len > 0) {
    const auto& p = page(byte_offset / kPage);
    const size_t in = size_t(byte_offset % kPage);
    const size_t n = std::min(len, p.size() - in);
    std::memcpy(out, p.data() + in, n);
    out += n;
    byte_offset += n;
    len -= n;
  }
}

}  // namespace aisio::io
