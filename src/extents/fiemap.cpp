#include "extents/fiemap.hpp"

#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace aisio::extents {

uint32_t flags_from_fiemap(uint32_t f) {
  uint32_t out = 0;
  if (f & FIEMAP_EXTENT_LAST) out |= kExtLast;
  if (f & FIEMAP_EXTENT_UNKNOWN) out |= kExtUnknown;
  if (f & FIEMAP_EXTENT_DELALLOC) out |= kExtDelalloc | kExtUnknown;
  if (f & (FIEMAP_EXTENT_ENCODED | FIEMAP_EXTENT_DATA_ENCRYPTED)) out |= kExtEncoded;
  if (f & (FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_DATA_TAIL)) out |= kExtInline;
  if (f & FIEMAP_EXTENT_NOT_ALIGNED) out |= kExtNotAligned;
  if (f & FIEMAP_EXTENT_UNWRITTEN) out |= kExtUnwritten;
  if (f & FIEMAP_EXTENT_SHARED) out |= kExtShared;
  return out;
}

std::vector<Extent> fiemap(int fd, const FiemapOptions& opt, const std::string& what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno("stat " + what);
  if (!S_ISREG(st.st_mode)) throw Error(Errc::invalid_argument, what + ": not a regular file");

  uint32_t batch = opt.batch ? opt.batch : 1;
  size_t bytes = sizeof(struct fiemap) + size_t(batch) * sizeof(struct fiemap_extent);
  // fiemap_extent holds u64s: keep the buffer 8-byte aligned.
  std::unique_ptr<uint64_t[]> storage(new uint64_t[(bytes + 7) / 8]);
  auto* fm = reinterpret_cast<struct fiemap*>(storage.get());

  std::vector<Extent> out;
  uint64_t pos = opt.start;
  uint64_t end = opt.length == UINT64_MAX || opt.start + opt.length < opt.start ? UINT64_MAX : opt.start + opt.length;
  bool sync = opt.sync;
  while (pos < end) {
    std::memset(fm, 0, bytes);
    fm->fm_start = pos;
    fm->fm_length = end == UINT64_MAX ? FIEMAP_MAX_OFFSET - pos : end - pos;
    fm->fm_flags = sync ? FIEMAP_FLAG_SYNC : 0;
    fm->fm_extent_count = batch;
    if (::ioctl(fd, FS_IOC_FIEMAP, fm) != 0) {
      int e = errno;
      if (e == EOPNOTSUPP || e == ENOTTY)
        throw Error(Errc::not_supported, what + ": the file system does not support FIEMAP");
      if (e == EBADR)
        throw Error(Errc::not_supported, what + ": FIEMAP flags not supported by the file system");
      throw_errno("FIEMAP " + what, e);
    }
    sync = false;  // one flush is enough
    uint32_t n = fm->fm_mapped_extents;
    if (n == 0) break;
    if (n > batch) n = batch;
    bool last = false;
    for (uint32_t i = 0; i < n; ++i) {
      const auto& fe = fm->fm_extents[i];
      Extent x{fe.fe_logical, fe.fe_physical, fe.fe_length, flags_from_fiemap(fe.fe_flags)};
      if (x.has(kExtUnknown)) x.physical = 0;
      if (x.length == 0) continue;
      // An extent may straddle the start of this batch's range: keep it once.
      if (!out.empty() && x.logical < out.back().end()) {
        if (x.end() <= out.back().end()) continue;
        throw Error(Errc::protocol, what + ": FIEMAP returned overlapping extents at offset " +
                                        std::to_string(x.logical));
      }
      out.push_back(x);
      if (fe.fe_flags & FIEMAP_EXTENT_LAST) last = true;
    }
    if (last || n < batch) break;
    uint64_t next = out.empty() ? end : out.back().end();
    if (next <= pos) break;  // no progress: stop rather than loop
    pos = next;
  }
  // A range that ends before EOF has no LAST flag from the kernel; keep what it said.
  return out;
}

FileExtents resolve(int fd, const FiemapOptions& opt, const std::string& path) {
  std::string what = path.empty() ? "fd " + std::to_string(fd) : path;
  FileExtents fx;
  fx.path = path;
  fx.extents = fiemap(fd, opt, what);
  // Stat after the sync so size and times describe what was mapped.
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno("stat " + what);
  fx.dev = st.st_dev;
  fx.ino = st.st_ino;
  fx.size = uint64_t(st.st_size);
  fx.mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  fx.ctime_ns = int64_t(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  fx.block_size = uint32_t(st.st_blksize);
  return fx;
}

FileExtents resolve(const std::string& path, const FiemapOptions& opt) {
  // O_NONBLOCK: a FIFO must not hang the open; fiemap() rejects non-regular files.
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) throw_errno("open " + path);
  return resolve(fd.get(), opt, path);
}

}  // namespace aisio::extents
