// `aisio fil gen DIR`: a deterministic data set (same seed, same options: same names,
// sizes, layout and bytes) with a manifest of XXH3-64 hashes.
//
// Sizes: fixed:SIZE, uniform:MIN:MAX, lognormal:MEDIAN:SIGMA[:MAX]. With --mix the set
// also holds the awkward cases: an empty file, 1-byte and other tiny files, sizes with
// unaligned tails, sparse files (holes at the start, middle and end, an unwritten
// preallocated range, an all-hole file) and fragmented files (their blocks allocated
// interleaved with another file's, so they have many extents on XFS/ext4).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "fil/manifest.hpp"

namespace aisio::fil {

struct SizeDist {
  enum Kind { fixed, uniform, lognormal } kind = lognormal;
  uint64_t a = 256 << 10;  // fixed: size; uniform: min; lognormal: median
  uint64_t b = 0;          // uniform: max; lognormal: cap (0: 64 x median)
  double sigma = 1.0;      // lognormal
  static SizeDist parse(const std::string& text);  // Errc::invalid_argument
  std::string describe() const;
  uint64_t sample(class Rng& r) const;
};

struct GenOptions {
  uint64_t count = 300;        // files (the --mix files included)
  uint64_t total = 0;          // if > 0: regular files until their bytes reach this
  SizeDist size;
  uint32_t fanout = 64;        // entries per directory at most
  bool mix = false;
  uint64_t seed = 1;
  bool block_hashes = false;   // per-4 KiB hashes in the manifest
  uint32_t fragment_piece = 16 << 10;  // bytes per extent of fragmented files
  bool sync = true;            // syncfs() at the end (extents get device locations)
  std::string generator;       // recorded in the manifest
  std::function<void(uint64_t bytes_done, uint64_t bytes_total)> progress;
};

struct GenResult {
  Manifest manifest;
  std::map<std::string, uint64_t> kinds;  // files per kind
  uint64_t directories = 0;
  double seconds = 0;
  std::string notes;  // e.g. "fallocate not supported: fragmented files are not fragmented"
};

// The plan without touching the disk (names, sizes, kinds, segments, keys; hashes
// filled in). Same options, same plan.
Manifest plan_dataset(const GenOptions& o);
// Creates DIR (if needed) and writes the data set and DIR/manifest.json.
GenResult generate(const std::string& dir, const GenOptions& o);

}  // namespace aisio::fil
