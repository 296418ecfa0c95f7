#include "extents/cache.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace aisio::extents {
namespace {
int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
}  // namespace

ExtentCache::ExtentCache(CacheOptions opt) : opt_(opt) {
  if (opt_.capacity == 0) opt_.capacity = 1;
}

std::shared_ptr<const FileExtents> ExtentCache::lookup(const std::string& path, bool force) {
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) throw_errno("open " + path);
  return lookup(fd.get(), path, force);
}

std::shared_ptr<const FileExtents> ExtentCache::get(const std::string& path) { return lookup(path, false); }
std::shared_ptr<const FileExtents> ExtentCache::get(int fd, const std::string& path) { return lookup(fd, path, false); }
std::shared_ptr<const FileExtents> ExtentCache::refresh(const std::string& path) { return lookup(path, true); }

std::shared_ptr<const FileExtents> ExtentCache::lookup(int fd, const std::string& path, bool force) {
  int64_t t0 = now_ns();
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno("stat " + path);
  std::pair<uint64_t, uint64_t> key{st.st_dev, st.st_ino};
  Stamp stamp{uint64_t(st.st_size), int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
              int64_t(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec, uint64_t(st.st_blocks)};
  {
    std::lock_guard lk(mu_);
    auto it = map_.find(key);
    if (it != map_.end()) {
      const Entry& e = it->second;
      bool racy = e.resolved_ns - std::max(e.stamp.mtime_ns, e.stamp.ctime_ns) < opt_.racy_window_ns;
      if (!force && e.stamp == stamp && !racy) {
        ++stats_.hits;
        lru_.splice(lru_.begin(), lru_, e.lru);
        return e.fx;
      }
      ++stats_.invalidations;
    } else {
      ++stats_.misses;
    }
  }
  // Resolve outside the lock. The stamp taken before FIEMAP is what the entry keeps:
  // a write racing with the mapping changes mtime/ctime past it, so the next get()
  // re-resolves.
  auto fx = std::make_shared<FileExtents>(resolve(fd, opt_.fiemap, path));
  fx->size = stamp.size;
  fx->mtime_ns = stamp.mtime_ns;
  fx->ctime_ns = stamp.ctime_ns;
  std::lock_guard lk(mu_);
  if (auto it = map_.find(key); it != map_.end()) erase(it);
  lru_.push_front(key);
  map_[key] = Entry{fx, stamp, t0, lru_.begin()};
  while (map_.size() > opt_.capacity) {
    map_.erase(lru_.back());
    lru_.pop_back();
  }
  return fx;
}

void ExtentCache::invalidate(uint64_t dev, uint64_t ino) {
  std::lock_guard lk(mu_);
  if (auto it = map_.find({dev, ino}); it != map_.end()) erase(it);
}

void ExtentCache::erase(std::map<std::pair<uint64_t, uint64_t>, Entry>::iterator it) {
  lru_.erase(it->second.lru);
  map_.erase(it);
}

CacheStats ExtentCache::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

size_t ExtentCache::size() const {
  std::lock_guard lk(mu_);
  return map_.size();
}

}  // namespace aisio::extents
