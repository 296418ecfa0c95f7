#include "emu/shm.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "common/error.hpp"

namespace aisio::emu {

SharedMemory& SharedMemory::operator=(SharedMemory&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = std::move(o.fd_);
    p_ = std::exchange(o.p_, nullptr);
    len_ = std::exchange(o.len_, 0);
  }
  return *this;
}

void SharedMemory::reset() {
  if (p_) munmap(p_, len_);
  fd_.reset();
  p_ = nullptr;
  len_ = 0;
}

SharedMemory SharedMemory::create(const std::string& name, size_t len) {
  SharedMemory m;
  m.fd_.reset(memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!m.fd_) throw_errno("memfd_create " + name);
  const int fd = m.fd_.get();
  if (ftruncate(fd, off_t(len)) != 0) throw_errno("ftruncate memfd " + name + " to " + std::to_string(len));
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) throw_errno("seal memfd " + name);
  // Place the mapping on a 2 MiB boundary: bus addresses are offsets from a region
  // base, so a buffer aligned in virtual memory (to a large MPS page, say) is then
  // aligned on the bus too.
  const size_t align = size_t(2) << 20, span = (len + 4095) & ~size_t(4095);
  void* r = mmap(nullptr, span + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) throw_errno("reserve address space for memfd " + name);
  auto* base = static_cast<uint8_t*>(r);
  auto* at = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(base) + align - 1) & ~uintptr_t(align - 1));
  void* p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    munmap(base, span + align);
    throw_errno("mmap memfd " + name, e);
  }
  if (at > base) munmap(base, size_t(at - base));
  if (base + span + align > at + span) munmap(at + span, size_t(base + span + align - (at + span)));
  m.p_ = static_cast<uint8_t*>(p);
  m.len_ = len;
  return m;
}

SharedMemory SharedMemory::adopt(int fd, size_t len, bool require_seal) {
  SharedMemory m;
  m.fd_.reset(fd);
  if (len == 0) throw Error(Errc::protocol, "shared memory of 0 bytes");
  if (require_seal) {
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_SHRINK))
      throw Error(Errc::protocol, "shared memory fd is not a memfd sealed with F_SEAL_SHRINK");
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) throw_errno("fstat shared memory fd");
  if (uint64_t(st.st_size) < len)
    throw Error(Errc::protocol, "shared memory fd holds " + std::to_string(st.st_size) + " bytes, " +
                                    std::to_string(len) + " requested");
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw_errno("mmap shared memory fd");
  m.p_ = static_cast<uint8_t*>(p);
  m.len_ = len;
  return m;
}

}  // namespace aisio::emu
