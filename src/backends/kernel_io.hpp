// What the kernel backends (psync, io_uring) transfer: a positional read or write of a
// file descriptor, and its result the way the kernel reports it (bytes, or -errno).
#pragma once
#include <cstdint>

#include "backends/queue.hpp"

namespace aisio::backends {

struct KernelRequest {
  int fd = -1;
  int file_index = -1;   // io_uring: index among the registered files (-1: use fd)
  uint8_t* buf = nullptr;
  uint32_t len = 0;
  uint64_t off = 0;      // bytes
  uint8_t op = kRead;
  bool fixed_buf = false;  // io_uring: buf lies in the registered buffer
};

}  // namespace aisio::backends
