// A flat, read-only extent index that one process (the daemon) builds and publishes
// and others map: header + fixed-size file records + fixed-size extent records + a
// string table, all little-endian host layout, 8-byte aligned. It lives in a sealed
// memfd so clients can mmap it read-only and trust that it never changes under them.
//
//   [IndexHeader][IndexFileRecord x file_count][IndexExtentRecord x extent_count][paths]
//
// File records are sorted by path (binary search); a file's extents are the
// contiguous slice [first_extent, first_extent + extent_count).
#pragma once
#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "extents/extent.hpp"

namespace aisio::extents {

inline constexpr char kIndexMagic[8] = {'A', 'I', 'S', 'I', 'O', 'E', 'X', 'T'};
inline constexpr uint32_t kIndexVersion = 1;

struct IndexHeader {
  char magic[8];
  uint32_t version;
  uint32_t header_size;         // sizeof(IndexHeader)
  uint32_t file_record_size;    // sizeof(IndexFileRecord)
  uint32_t extent_record_size;  // sizeof(IndexExtentRecord)
  uint64_t file_count;
  uint64_t extent_count;
  uint64_t files_offset;
  uint64_t extents_offset;
  uint64_t strings_offset;
  uint64_t strings_size;
  uint64_t total_size;
  uint64_t generation;          // bumped by the publisher on every rebuild
  uint64_t device_offset;       // partition start in bytes (for TranslateOptions)
  uint32_t lba_size;            // namespace LBA size the publisher saw (0: unknown)
  uint32_t reserved;
  uint64_t body_checksum;       // XXH64 of bytes [header_size, total_size)
  uint64_t header_checksum;     // XXH64 of the header with this field zero
};
static_assert(sizeof(IndexHeader) == 120);

struct IndexFileRecord {
  uint64_t dev;
  uint64_t ino;
  uint64_t size;
  int64_t mtime_ns;
  int64_t ctime_ns;
  uint64_t first_extent;
  uint64_t extent_count;
  uint64_t path_offset;  // into the string table
  uint32_t path_len;
  uint32_t block_size;
};
static_assert(sizeof(IndexFileRecord) == 72);

struct IndexExtentRecord {
  uint64_t logical;
  uint64_t physical;
  uint64_t length;
  uint32_t flags;  // ExtentFlag bits
  uint32_t reserved;
};
static_assert(sizeof(IndexExtentRecord) == 32);

class IndexBuilder {
 public:
  void add(const FileExtents& fx);  // Errc::invalid_argument on a duplicate path
  void set_device(uint64_t device_offset, uint32_t lba_size) { device_offset_ = device_offset; lba_size_ = lba_size; }
  void set_generation(uint64_t g) { generation_ = g; }
  std::vector<uint8_t> build() const;

 private:
  std::vector<FileExtents> files_;
  std::set<std::string> paths_;
  uint64_t device_offset_ = 0;
  uint32_t lba_size_ = 0;
  uint64_t generation_ = 0;
};

// A validated view over index bytes (owned elsewhere: a vector or a mapping).
// Construction checks magic, version, record sizes, bounds of every record and both
// checksums; failures throw aisio::Error(protocol).
class IndexView {
 public:
  struct File {
    std::string_view path;
    const IndexFileRecord* rec;
    std::span<const IndexExtentRecord> extents;
    std::vector<Extent> to_extents() const;
  };
  explicit IndexView(std::span<const uint8_t> bytes);
  const IndexHeader& header() const { return *hdr_; }
  size_t size() const { return files_.size(); }
  File file(size_t i) const;
  std::optional<File> find(std::string_view path) const;
  std::optional<File> find(uint64_t dev, uint64_t ino) const;

 private:
  const IndexHeader* hdr_ = nullptr;
  std::span<const IndexFileRecord> files_;
  std::span<const IndexExtentRecord> extents_;
  std::string_view strings_;
};

// The index in a sealed memfd (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL).
class IndexMemfd {
 public:
  static IndexMemfd publish(std::span<const uint8_t> bytes, const std::string& name = "aisio-extents");
  IndexMemfd(IndexMemfd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  IndexMemfd& operator=(IndexMemfd&& o) noexcept;
  ~IndexMemfd();
  int fd() const { return fd_; }
  int release() { int f = fd_; fd_ = -1; return f; }

 private:
  explicit IndexMemfd(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Maps an index fd read-only (a client's side). With require_sealed, the fd must be a
// memfd sealed against writes, so the content cannot change while mapped.
class MappedIndex {
 public:
  static MappedIndex map(int fd, bool require_sealed = true);
  MappedIndex(MappedIndex&& o) noexcept;
  MappedIndex& operator=(MappedIndex&&) = delete;
  ~MappedIndex();
  const IndexView& view() const { return view_; }
  const uint8_t* data() const { return static_cast<const uint8_t*>(addr_); }

 private:
  MappedIndex(void* addr, size_t len);
  void* addr_ = nullptr;
  size_t len_ = 0;
  IndexView view_;
};

}  // namespace aisio::extents
