#include "extents/block_reader.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.hpp"

namespace aisio::extents {
namespace {
[[noreturn]] void past_end(uint64_t off, size_t len, uint64_t size, const std::string& what) {
  throw Error(Errc::io, "read of " + std::to_string(len) + " bytes at offset " + std::to_string(off) +
                            " is past the end of " + what + " (" + std::to_string(size) +
                            " bytes; truncated image?)");
}
bool range_ok(uint64_t off, size_t len, uint64_t size) { return off <= size && len <= size - off; }
}  // namespace

FileBlockReader::FileBlockReader(const std::string& path) : path_(path) {
  fd_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd_) throw_errno("open " + path);
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) throw_errno("stat " + path);
  if (S_ISBLK(st.st_mode)) {
    if (::ioctl(fd_.get(), BLKGETSIZE64, &size_) != 0) throw_errno("BLKGETSIZE64 " + path);
  } else if (S_ISREG(st.st_mode)) {
    size_ = uint64_t(st.st_size);
  } else {
    throw Error(Errc::invalid_argument, path + ": not a regular file or block device");
  }
}

void FileBlockReader::read(uint64_t off, void* buf, size_t len) {
  if (!range_ok(off, len, size_)) past_end(off, len, size_, path_);
  auto* p = static_cast<uint8_t*>(buf);
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd_.get(), p + done, len - done, off_t(off + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("read " + path_ + " at offset " + std::to_string(off + done));
    }
    if (n == 0)
      throw Error(Errc::io, "short read of " + path_ + " at offset " + std::to_string(off + done) +
                                " (file shrank or truncated image)");
    done += size_t(n);
  }
}

OffsetBlockReader::OffsetBlockReader(std::shared_ptr<BlockReader> base, uint64_t offset, uint64_t size)
    : base_(std::move(base)), offset_(offset) {
  uint64_t bs = base_->size();
  if (offset > bs)
    throw Error(Errc::invalid_argument, "offset " + std::to_string(offset) + " is past the end of the device (" +
                                            std::to_string(bs) + " bytes)");
  size_ = size == UINT64_MAX ? bs - offset : size;
  if (size_ > bs - offset)
    throw Error(Errc::invalid_argument, "window [" + std::to_string(offset) + ", +" + std::to_string(size) +
                                            ") is past the end of the device (" + std::to_string(bs) + " bytes)");
}

void OffsetBlockReader::read(uint64_t off, void* buf, size_t len) {
  if (!range_ok(off, len, size_)) past_end(off, len, size_, "the window");
  base_->read(offset_ + off, buf, len);
}

void MemoryBlockReader::read(uint64_t off, void* buf, size_t len) {
  if (!range_ok(off, len, data_.size())) past_end(off, len, data_.size(), "the in-memory image");
  if (len) std::memcpy(buf, data_.data() + off, len);
}

std::shared_ptr<BlockReader> open_block_reader(const std::string& path, uint64_t offset) {
  std::shared_ptr<BlockReader> r = std::make_shared<FileBlockReader>(path);
  if (offset) r = std::make_shared<OffsetBlockReader>(r, offset);
  return r;
}

}  // namespace aisio::extents
