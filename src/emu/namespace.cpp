#include "emu/namespace.hpp"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "common/error.hpp"

namespace aisio::emu {

Namespace::Namespace(uint32_t nsid, const NamespaceConfig& cfg)
    : nsid_(nsid), lba_shift_(cfg.lba_size == 4096 ? 12 : 9), backing_(cfg.backing), path_(cfg.path) {
  nsze_ = cfg.size_bytes >> lba_shift_;
  map_len_ = size_t(nsze_) << lba_shift_;
  if (backing_ == Backing::null) return;
  void* p = MAP_FAILED;
  if (backing_ == Backing::ram) {
    // NORESERVE: a 1 TiB namespace costs only the pages actually written.
    p = mmap(nullptr, map_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw_errno("mmap " + std::to_string(map_len_) + " bytes for namespace " + std::to_string(nsid));
  } else {
    fd_.reset(open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd_) throw_errno("open namespace file " + path_);
    struct stat st {};
    if (fstat(fd_.get(), &st) != 0) throw_errno("fstat " + path_);
    // Grow (sparsely) to the namespace size; never shrink an existing image.
    if (uint64_t(st.st_size) < map_len_ && ftruncate(fd_.get(), off_t(map_len_)) != 0)
      throw_errno("ftruncate " + path_);
    p = mmap(nullptr, map_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd_.get(), 0);
    if (p == MAP_FAILED) throw_errno("mmap namespace file " + path_);
  }
  data_ = static_cast<uint8_t*>(p);
}

Namespace::~Namespace() {
  if (data_) munmap(data_, map_len_);
}

void Namespace::deallocate(uint64_t slba, uint64_t nlb) {
  if (!data_ || nlb == 0) return;
  size_t off = size_t(slba) << lba_shift_, len = size_t(nlb) << lba_shift_;
  if (backing_ == Backing::file) {
    // The hole reads back as zeros through the shared mapping too.
    if (fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off_t(off), off_t(len)) == 0) return;
    std::memset(data_ + off, 0, len);  // filesystem without hole punching
    return;
  }
  const size_t page = 4096;
  size_t a = (off + page - 1) & ~(page - 1), b = (off + len) & ~(page - 1);
  if (a >= b) {
    std::memset(data_ + off, 0, len);
    return;
  }
  std::memset(data_ + off, 0, a - off);
  // Private anonymous pages dropped by MADV_DONTNEED read back as zeros.
  if (madvise(data_ + a, b - a, MADV_DONTNEED) != 0) std::memset(data_ + a, 0, b - a);
  std::memset(data_ + b, 0, off + len - b);
}

void Namespace::flush() {
  if (backing_ == Backing::file && data_) msync(data_, map_len_, MS_SYNC);
}

}  // namespace aisio::emu
