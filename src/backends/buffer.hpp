// Page-aligned host memory for the kernel backends' I/O buffers (O_DIRECT needs 4 KiB
// alignment), every page touched once so the first I/O does not fault.
#pragma once
#include <fmt/format.h>

#include <cstdint>
#include <cstdlib>
#include <utility>

#include "common/error.hpp"

namespace aisio::backends {

class AlignedBuffer {
 public:
  enum Fill { zero, pattern };  // pattern: recognisable bytes for writes
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t n, Fill fill = zero) {
    n_ = (n + 4095) & ~size_t(4095);
    p_ = static_cast<uint8_t*>(std::aligned_alloc(4096, n_));
    if (!p_) throw Error(Errc::no_memory, fmt::format("cannot allocate {} bytes of I/O buffer", n_));
    if (fill == pattern)
      for (size_t i = 0; i < n_; ++i) p_[i] = uint8_t(i * 131 + 7);
    else
      for (size_t i = 0; i < n_; i += 4096) p_[i] = 0;
  }
  AlignedBuffer(AlignedBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
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

}  // namespace aisio::backends
