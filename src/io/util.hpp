// Small helpers shared by the engines (internal to src/io).
#pragma once
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
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

// Byte-addressed reads of a namespace through a bounce buffer (NvmeBlockReader,
// TcpBlockReader): read_lbas(slba, nlb) reads whole LBAs into `bounce`, at most `limit`
// bytes (whole LBAs) at a time, and the wanted bytes are copied out of it.
template <class ReadLbas>
void read_via_bounce(uint64_t pos, void* buf, size_t len, uint32_t lba, size_t limit, const uint8_t* bounce,
                     ReadLbas read_lbas) {
  auto* out = static_cast<uint8_t*>(buf);
  while (len > 0) {
    const uint64_t slba = pos / lba;
    const size_t skip = size_t(pos % lba);
    const size_t n = std::min(len, limit - skip);
    read_lbas(slba, uint32_t((skip + n + lba - 1) / lba));
    std::memcpy(out, bounce + skip, n);
    out += n, pos += n, len -= n;
  }
}

}  // namespace aisio::io
