// posix (pread through the page cache) and posix-direct (O_DIRECT, aligned buffers):
// one file at a time per thread, io_size bytes per read.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "backends/psync.hpp"
#include "common/error.hpp"
#include "io/engine.hpp"
#include "io/util.hpp"

namespace aisio::io {

EngineStats& EngineStats::operator+=(const EngineStats& o) {
  files += o.files;
  bytes += o.bytes;
  device_reads += o.device_reads;
  device_bytes += o.device_bytes;
  zero_fill_bytes += o.zero_fill_bytes;
  fallback_reads += o.fallback_reads;
  resolve_s += o.resolve_s;
  poll_sleeps += o.poll_sleeps;
  return *this;
}

namespace {

// The psync backend's completion: the result of the one read in flight.
struct Read : backends::KernelRequest {
  int64_t res = 0;
  static void done(backends::KernelRequest& r, int64_t res) { static_cast<Read&>(r).res = res; }
};

class PosixEngine final : public Engine {
 public:
  PosixEngine(std::string root, size_t io_size, bool direct)
      : root_(std::move(root)), io_size_(io_size), direct_(direct), buf_(io_size) {}

  void read(std::span<const FileTask> files, FileSink& sink) override {
    for (const auto& f : files) read_one(f, sink);
  }
  const EngineStats& stats() const override { return st_; }

 private:
  void read_one(const FileTask& f, FileSink& sink) {
    std::string path = join_path(root_, f.rel);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (direct_ ? O_DIRECT : 0));
    if (fd < 0) {
      int e = errno;
      sink.begin(f, 0);
      std::string why = fmt::format("open {}: {}", path, std::strerror(e));
      if (direct_ && e == EINVAL) why += " (the file system does not support O_DIRECT)";
      sink.end(f, why);
      return;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      int e = errno;
      ::close(fd);
      sink.begin(f, 0);
      sink.end(f, fmt::format("stat {}: {}", path, std::strerror(e)));
      return;
    }
    uint64_t size = uint64_t(st.st_size);
    sink.begin(f, size);
    std::string err;
    uint64_t off = 0;
    while (off < size) {
      // O_DIRECT: always a whole aligned io_size; the read at the tail returns short.
      Read rd;
      rd.fd = fd;
      rd.buf = buf_.data();
      rd.len = uint32_t(direct_ ? io_size_ : size_t(std::min<uint64_t>(io_size_, size - off)));
      rd.off = off;
      q_.submit<Read>(rd);
      q_.reap<Read>();
      int64_t n = rd.res;
      if (n < 0) {
        err = fmt::format("pread {} at offset {}: {}", path, off, std::strerror(int(-n)));
        break;
      }
      ++st_.device_reads;
      st_.device_bytes += uint64_t(n);
      if (n == 0) {
        err = fmt::format("{}: unexpected end of file at offset {} (size {})", path, off, size);
        break;
      }
      size_t use = size_t(std::min<uint64_t>(uint64_t(n), size - off));
      sink.data(f, off, buf_.data(), use);
      off += use;
      st_.bytes += use;
    }
    ::close(fd);
    ++st_.files;
    sink.end(f, err);
  }

  std::string root_;
  size_t io_size_;
  bool direct_;
  AlignedBuffer buf_;
  backends::PsyncQueue q_;
  EngineStats st_;
};

class PosixPath final : public Path {
 public:
  PosixPath(std::string root, const EngineOptions& o, bool direct) : root_(std::move(root)), o_(o), direct_(direct) {
    check_io_size(o_.io_size);
  }
  std::string name() const override { return direct_ ? "posix-direct" : "posix"; }
  std::string describe() const override {
    return direct_ ? fmt::format("pread, O_DIRECT, 4 KiB aligned {} B buffers, tail as a short aligned read",
                                 o_.io_size)
                   : fmt::format("pread through the page cache, {} B reads", o_.io_size);
  }
  std::unique_ptr<Engine> make_engine(uint32_t) override {
    return std::make_unique<PosixEngine>(root_, o_.io_size, direct_);
  }

 private:
  std::string root_;
  EngineOptions o_;
  bool direct_;
};

}  // namespace

std::unique_ptr<Path> make_posix_path(const std::string& root, const EngineOptions& o) {
  return std::make_unique<PosixPath>(root, o, false);
}
std::unique_ptr<Path> make_posix_direct_path(const std::string& root, const EngineOptions& o) {
  return std::make_unique<PosixPath>(root, o, true);
}

}  // namespace aisio::io
