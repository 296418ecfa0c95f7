// File byte range -> NVMe (slba, nlb) runs for a namespace's LBA size.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "extents/block_reader.hpp"
#include "extents/extent.hpp"

namespace aisio::extents {

// One piece of a translated range. A data run reads nlb LBAs from slba; the file's
// bytes [file_offset, file_offset + length) start `skip` bytes into that read. A
// zero_fill run (hole, unwritten extent) reads nothing: its bytes are zeros.
struct LbaRun {
  uint64_t file_offset = 0;
  uint64_t length = 0;
  bool zero_fill = false;
  uint64_t slba = 0;
  uint32_t nlb = 0;   // a count (not 0's based); 0 for zero_fill runs
  uint32_t skip = 0;  // bytes at the start of the first LBA before file_offset
  friend bool operator==(const LbaRun&, const LbaRun&) = default;
};

struct TranslateOptions {
  uint32_t lba_size = 512;      // namespace LBA size (power of two, >= 512)
  uint64_t device_offset = 0;   // added to extent.physical: the partition start in bytes
  uint32_t max_nlb = 65536;     // split data runs at this many LBAs (NVMe NLB limit / MDTS)
  uint64_t file_size = UINT64_MAX;  // clip the range at EOF
};

// Runs covering [a, b) in file order. Split at every extent boundary; holes (gaps
// between extents, kExtHole) and unwritten extents become zero_fill runs.
// Throws aisio::Error:
//   not_supported  delalloc extents ("sync first"), inline/encoded/unknown-location data
//   invalid_argument  bad lba_size / range
std::vector<LbaRun> translate(std::span<const Extent> extents, uint64_t a, uint64_t b,
                              const TranslateOptions& opt);

// Reads [a, b) of the file through `dev` (a reader for the whole namespace / image,
// i.e. LBA 0 at byte 0) into out[0 .. b-a), following translate().
void read_file_range(BlockReader& dev, std::span<const Extent> extents, uint64_t a, uint64_t b,
                     const TranslateOptions& opt, void* out);

}  // namespace aisio::extents
