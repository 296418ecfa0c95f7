// Small helpers shared by the engines (internal to src/io).
#pragma once
#include <fmt/format.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/error.hpp"

namespace aisio::io {

inline std::string join_path(const std::string& root, const std::string& rel) {
  if (root.empty()) return rel;
  return root.back() == '/' ? root + rel : root + "/" + rel;
}

inline void check_io_size(size_t io_size) {
  if (io_size < 4096 || io_size % 4096)
    throw Error(Errc::invalid_argument, fmt::format("--io-size {} must be a multiple of 4096 (>= 4096)", io_size));
}

// Page-aligned heap memory, touched once so the first read does not fault.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t n) {
    n_ = (n + 4095) & ~size_t(4095);
    p_ = static_cast<uint8_t*>(std::aligned_alloc(4096, n_));
    if (!p_) throw Error(Errc::no_memory, fmt::format("cannot allocate {} bytes of I/O buffer", n_));
    for (size_t i = 0; i < n_; i += 4096) p_[i] = 0;
  }
  AlignedBuffer(AlignedBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(p_); }
  uint8_t* data() const { return p_; }
  size_t size() const { return n_; }

 private:
  uint8_t* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace aisio::io
