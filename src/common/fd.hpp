// An owned file descriptor: closed when the owner goes, moved but never copied.
#pragma once
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "common/error.hpp"

namespace aisio {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Writes all n bytes at off, retrying short writes and EINTR; throws Errc::system
// ("write PATH at offset OFF") on an error.
inline void pwrite_all(int fd, const void* buf, size_t n, uint64_t off, const std::string& path) {
  auto* p = static_cast<const uint8_t*>(buf);
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, off_t(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      throw_errno("write " + path + " at offset " + std::to_string(off));
    }
    p += w;
    n -= size_t(w);
    off += uint64_t(w);
  }
}

}  // namespace aisio
