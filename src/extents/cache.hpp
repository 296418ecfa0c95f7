// Extent cache for the FIEMAP backend. An entry is reused while the file keeps its
// identity and change stamps: (st_dev, st_ino) plus size, mtime, ctime and st_blocks.
// Writes, truncates, fallocate and reflink all move mtime/ctime; delalloc writeback
// does not, which is why entries are resolved with FIEMAP_FLAG_SYNC.
//
// Timestamps are coarse (one clock tick): a write landing in the same tick as the
// stat that stamped an entry would leave the stamps unchanged. Entries whose stamps
// are within `racy_window_ns` of their resolve time are therefore re-resolved on the
// next get() (git's "racily clean" rule).
//
// Not detected (call refresh()): extent moves that keep mtime/ctime (xfs_fsr
// defragmentation, deduplication), and the shared flag of a file whose reflink
// partner was rewritten.
#pragma once
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "extents/extent.hpp"
#include "extents/fiemap.hpp"

namespace aisio::extents {

struct CacheOptions {
  FiemapOptions fiemap{};
  size_t capacity = 4096;                    // entries kept (least recently used dropped)
  int64_t racy_window_ns = 100'000'000;      // 100 ms: > one timestamp tick at HZ=100
};

struct CacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;         // not cached
  uint64_t invalidations = 0;  // cached but stale (stamps changed, racy, or refresh)
};

class ExtentCache {
 public:
  explicit ExtentCache(CacheOptions opt = {});

  // Cached extents of the file, re-resolved when it changed.
  std::shared_ptr<const FileExtents> get(const std::string& path);
  std::shared_ptr<const FileExtents> get(int fd, const std::string& path = {});
  // Resolves again unconditionally and replaces the entry.
  std::shared_ptr<const FileExtents> refresh(const std::string& path);

  void invalidate(uint64_t dev, uint64_t ino);
  CacheStats stats() const;
  size_t size() const;

 private:
  struct Stamp {
    uint64_t size = 0;
    int64_t mtime_ns = 0, ctime_ns = 0;
    uint64_t blocks = 0;
    bool operator==(const Stamp&) const = default;
  };
  struct Entry {
    std::shared_ptr<const FileExtents> fx;
    Stamp stamp;
    int64_t resolved_ns = 0;
    std::list<std::pair<uint64_t, uint64_t>>::iterator lru;
  };
  std::shared_ptr<const FileExtents> lookup(int fd, const std::string& path, bool force);
  std::shared_ptr<const FileExtents> lookup(const std::string& path, bool force);
  void erase(std::map<std::pair<uint64_t, uint64_t>, Entry>::iterator it);  // with mu_ held

  CacheOptions opt_;
  mutable std::mutex mu_;
  std::map<std::pair<uint64_t, uint64_t>, Entry> map_;
  std::list<std::pair<uint64_t, uint64_t>> lru_;  // front = most recent
  CacheStats stats_;
};

}  // namespace aisio::extents
