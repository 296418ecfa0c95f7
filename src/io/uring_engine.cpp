// io_uring (liburing): up to qd reads in flight per thread across the files of a
// batch; O_DIRECT with 4 KiB aligned buffers by default, or buffered.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "backends/uring.hpp"
#include "common/error.hpp"
#include "io/engine.hpp"
#include "io/pipeline.hpp"
#include "io/util.hpp"

namespace aisio::io {

namespace {

// A chunk's read on the ring.
struct Read : backends::KernelRequest {
  PipeSlot* slot = nullptr;
  static void done(backends::KernelRequest& r, int64_t res) {
    PipeSlot& s = *static_cast<Read&>(r).slot;
    s.res = res;
    s.done = true;
  }
};

class UringEngine final : public PipelineEngine {
 public:
  UringEngine(std::string root, const EngineOptions& o, bool direct)
      : PipelineEngine(o.qd, o.io_size), root_(std::move(root)), direct_(direct), q_({.entries = qd_}),
        reads_(qd_) {
    for (size_t i = 0; i < slots_.size(); ++i) {
      bufs_.emplace_back(io_size_);
      slots_[i].buf = bufs_.back().data();
      reads_[i].slot = &slots_[i];
    }
  }

 protected:
  void open_file(PipeFile& f) override {
    std::string path = join_path(root_, f.task->rel);
    f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (direct_ ? O_DIRECT : 0));
    if (f.fd < 0) {
      int e = errno;
      f.fail(fmt::format("open {}: {}{}", path, std::strerror(e),
                         direct_ && e == EINVAL ? " (the file system does not support O_DIRECT)" : ""));
      return;
    }
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) {
      f.fail(fmt::format("stat {}: {}", path, std::strerror(errno)));
      return;
    }
    f.size = uint64_t(st.st_size);
  }
  void close_file(PipeFile& f) override {
    if (f.fd >= 0) ::close(f.fd);
    f.fd = -1;
  }
  void issue(PipeSlot& s) override {
    Read& r = reads_[size_t(&s - slots_.data())];
    r.fd = s.file->fd;
    r.buf = s.buf;
    // O_DIRECT: a whole number of 4 KiB blocks; the read of the tail returns short.
    r.len = uint32_t(direct_ ? (s.len + 4095) & ~size_t(4095) : s.len);
    r.off = s.off;
    q_.submit<Read>(r);
    ++st_.device_reads;
  }
  void flush() override {
    int r = q_.flush();
    if (r < 0) throw Error(Errc::system, fmt::format("io_uring_submit: {}", std::strerror(-r)));
  }
  void reap(bool may_block) override {
    if (may_block && !q_.wait()) return;
    q_.reap<Read>();
  }
  void finish(PipeSlot& s) override {
    std::string path = join_path(root_, s.file->task->rel);
    if (s.res < 0) {
      s.error = fmt::format("read {} at offset {}: {}", path, s.off, std::strerror(int(-s.res)));
      return;
    }
    st_.device_bytes += uint64_t(s.res);
    // A short read before the end of the chunk: finish it synchronously.
    size_t got = size_t(s.res);
    while (got < s.len) {
      ssize_t n = ::pread(s.file->fd, s.buf + got, direct_ ? ((s.len - got + 4095) & ~size_t(4095)) : s.len - got,
                          off_t(s.off + got));
      if (n < 0 && errno == EINTR) continue;
      ++st_.fallback_reads;
      if (n < 0) {
        s.error = fmt::format("pread {} at offset {}: {}", path, s.off + got, std::strerror(errno));
        return;
      }
      if (n == 0) {
        s.error = fmt::format("{}: unexpected end of file at offset {}", path, s.off + got);
        return;
      }
      got += size_t(n);
    }
  }

 private:
  std::string root_;
  bool direct_;
  backends::UringQueue q_;
  std::vector<Read> reads_;
  std::vector<AlignedBuffer> bufs_;
};

class UringPath final : public Path {
 public:
  UringPath(std::string root, const EngineOptions& o, bool direct) : root_(std::move(root)), o_(o), direct_(direct) {
    check_io_size(o_.io_size);
  }
  std::string name() const override { return direct_ ? "io_uring" : "io_uring-buffered"; }
  std::string describe() const override {
    return fmt::format("io_uring{}, {} reads of {} B in flight per thread", direct_ ? " + O_DIRECT" : " (buffered)",
                       o_.qd, o_.io_size);
  }
  std::unique_ptr<Engine> make_engine(uint32_t) override {
    return std::make_unique<UringEngine>(root_, o_, direct_);
  }

 private:
  std::string root_;
  EngineOptions o_;
  bool direct_;
};

}  // namespace

std::unique_ptr<Path> make_uring_path(const std::string& root, const EngineOptions& o, bool direct) {
  if (!aisio::uring_built())
    throw Error(Errc::not_supported, "io_uring: not built (liburing was not found at configure time)");
  return std::make_unique<UringPath>(root, o, direct);
}

}  // namespace aisio::io
