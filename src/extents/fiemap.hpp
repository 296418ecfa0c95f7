// FIEMAP backend: asks the kernel for a file's extents (any file system that
// implements FS_IOC_FIEMAP: XFS, ext4, btrfs, f2fs, ...).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "extents/extent.hpp"

namespace aisio::extents {

struct FiemapOptions {
  // FIEMAP_FLAG_SYNC: write back dirty data first so that delayed allocations get a
  // device location. Without it, delalloc extents come back flagged kExtDelalloc and
  // translate() refuses them.
  bool sync = true;
  uint32_t batch = 256;            // extents asked for per ioctl; the call loops
  uint64_t start = 0;              // file byte range to map
  uint64_t length = UINT64_MAX;
};

// Extents of an open file (regular file; other types give Errc::invalid_argument).
// Errc::not_supported when the file system has no FIEMAP.
std::vector<Extent> fiemap(int fd, const FiemapOptions& opt = {}, const std::string& what = "file");

// Extents plus identity (dev, ino, size, times) of a file.
FileExtents resolve(const std::string& path, const FiemapOptions& opt = {});
FileExtents resolve(int fd, const FiemapOptions& opt = {}, const std::string& path = {});

// FIEMAP_EXTENT_* bits -> ExtentFlag bits.
uint32_t flags_from_fiemap(uint32_t fe_flags);

}  // namespace aisio::extents
