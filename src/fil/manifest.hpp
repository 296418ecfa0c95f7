// The manifest of a data set: every file's path, size and XXH3-64 content hash, plus
// what it takes to regenerate the expected bytes (content key, data segments of
// sparse files) and optionally an XXH3-64 per 4 KiB block. Stored as JSON in
// DIR/manifest.json (format "aisio-fil-manifest", version 1).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aisio::fil {

inline constexpr const char* kManifestName = "manifest.json";
inline constexpr uint32_t kHashBlock = 4096;

struct Segment {
  uint64_t off = 0, len = 0;
  friend bool operator==(const Segment&, const Segment&) = default;
};

struct ManifestFile {
  std::string path;    // relative to the data set root
  uint64_t size = 0;
  uint64_t xxh3 = 0;   // XXH3_64bits of the whole file (seed 0)
  std::string kind;    // regular, empty, tiny, tail, sparse, fragmented
  std::optional<uint64_t> key;   // content key: bytes regenerable (see content.hpp)
  // Data ranges of a sparse file; everything else reads as zeros. Empty (and not
  // `sparse`): the content covers the whole file.
  std::vector<Segment> segments;
  bool sparse = false;
  std::vector<uint64_t> blocks;  // optional XXH3-64 of each 4 KiB block
};

struct Manifest {
  uint64_t seed = 0;
  std::string generator;  // what made it ("aisio fil gen ...")
  std::vector<ManifestFile> files;

  uint64_t total_bytes() const;
  std::string dump() const;                       // JSON text
  static Manifest parse(std::string_view json);   // Errc::protocol on bad input
  static Manifest load(const std::string& path);
  void save(const std::string& path) const;       // written to PATH.tmp, then renamed

  // The expected bytes [off, off + n) of `f`, when the manifest can regenerate them.
  static bool expected(const ManifestFile& f, uint64_t off, uint8_t* out, size_t n);
};

std::string hex64(uint64_t v);  // 16 lower-case hex digits
uint64_t parse_hex64(std::string_view s);

}  // namespace aisio::fil
