// Small helpers shared by the engines (internal to src/io).
#pragma once
#include <fmt/format.h>

#include <cstdint>
#include <string>

#include "backends/buffer.hpp"
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

using backends::AlignedBuffer;

}  // namespace aisio::io
