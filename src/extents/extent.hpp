// The extent: a run of a file's bytes and where it lives on the device. Both the
// FIEMAP backend and the XFS on-disk decoder produce these.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace aisio::extents {

enum ExtentFlag : uint32_t {
  kExtUnwritten = 1u << 0,   // allocated, never written: reads as zeros
  kExtShared = 1u << 1,      // shared with another file (reflink) or snapshot
  kExtDelalloc = 1u << 2,    // delayed allocation: no device location yet
  kExtHole = 1u << 3,        // a hole (only from fill_holes): reads as zeros
  kExtLast = 1u << 4,        // the last extent of the file
  kExtUnknown = 1u << 5,     // location unknown (FIEMAP_EXTENT_UNKNOWN)
  kExtInline = 1u << 6,      // data inline in metadata or tail-packed: no LBA of its own
  kExtEncoded = 1u << 7,     // compressed/encrypted: device bytes are not the file bytes
  kExtNotAligned = 1u << 8,  // offsets not block aligned (FIEMAP_EXTENT_NOT_ALIGNED)
};

struct Extent {
  uint64_t logical = 0;   // byte offset in the file
  uint64_t physical = 0;  // byte offset on the device the file system sits on (0 for holes)
  uint64_t length = 0;    // bytes
  uint32_t flags = 0;     // ExtentFlag bits

  bool has(uint32_t f) const { return (flags & f) != 0; }
  uint64_t end() const { return logical + length; }
  // True when reading this extent must produce zeros without touching the device.
  bool reads_as_zeros() const { return has(kExtHole | kExtUnwritten); }
  friend bool operator==(const Extent&, const Extent&) = default;
};

// "unwritten,shared,last"; "" for none.
std::string flag_names(uint32_t flags);
std::vector<std::string> flag_list(uint32_t flags);

// Inserts explicit kExtHole records for the gaps between extents and from the last
// extent to `file_size` (extents must be sorted and not overlap). kExtLast stays on
// the final record of the result.
std::vector<Extent> fill_holes(std::span<const Extent> extents, uint64_t file_size);

// Merges neighbours that are contiguous both in the file and on the device and carry
// the same flags (kExtLast aside). Useful to compare lists from different sources.
std::vector<Extent> merge_adjacent(std::span<const Extent> extents);

// Throws aisio::Error(protocol) unless extents are sorted, non-overlapping and non-empty.
void check_sorted(std::span<const Extent> extents, const std::string& what);

// What was resolved for one file.
struct FileExtents {
  std::string path;
  uint64_t dev = 0;        // st_dev of the file system
  uint64_t ino = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint32_t block_size = 0; // st_blksize (the file system block size on XFS/ext4)
  std::vector<Extent> extents;
};

}  // namespace aisio::extents
