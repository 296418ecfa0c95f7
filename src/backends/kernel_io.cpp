#include "backends/kernel_io.hpp"

#include <fmt/format.h>

#include <cstring>

namespace aisio::backends {

std::string kernel_io_error(const std::string& what, uint8_t op, uint64_t off, uint32_t len, int64_t res) {
  if (res < 0)
    return fmt::format("{} {} of {} bytes at offset {}: {}", what, op == kWrite ? "write" : "read", len, off,
                       std::strerror(int(-res)));
  return fmt::format("{} {} of {} bytes at offset {}: short transfer ({} bytes)", what,
                     op == kWrite ? "write" : "read", len, off, res);
}

}  // namespace aisio::backends
