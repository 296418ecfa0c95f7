// Shared memory made of a memfd: the BAR0 register page and DMA regions are memfds so
// another process can map the very same pages (the fd travels over a UNIX socket).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "common/fd.hpp"

namespace aisio::emu {

class SharedMemory {
 public:
  SharedMemory() = default;
  // A new zero-filled memfd of `len` bytes, sealed against shrinking so a peer can
  // never truncate it under a mapping (that would SIGBUS the other side).
  static SharedMemory create(const std::string& name, size_t len);
  // Map an fd received from a peer; takes ownership of fd. Requires the shrink seal
  // and a size of at least len when require_seal is set.
  static SharedMemory adopt(int fd, size_t len, bool require_seal);

  SharedMemory(SharedMemory&& o) noexcept { *this = std::move(o); }
  SharedMemory& operator=(SharedMemory&& o) noexcept;
  ~SharedMemory() { reset(); }

  uint8_t* data() const { return p_; }
  size_t size() const { return len_; }
  int fd() const { return fd_.get(); }
  void reset();

 private:
  Fd fd_;
  uint8_t* p_ = nullptr;
  size_t len_ = 0;
};

}  // namespace aisio::emu
