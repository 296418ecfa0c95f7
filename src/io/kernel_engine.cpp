// The kernel paths over the pipeline: posix (psync: pread, one read at a time per
// thread) and io_uring (liburing: up to qd reads in flight per thread across the files
// of a batch), each through the page cache or with O_DIRECT into 4 KiB aligned buffers
// (the tail read as a whole aligned block that returns short).
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "backends/psync.hpp"
#include "backends/uring.hpp"
#include "common/error.hpp"
#include "common/uring_probe.hpp"
#include "io/engine.hpp"
#include "io/pipeline.hpp"
#include "io/util.hpp"

namespace aisio::io {

ReadStats& ReadStats::operator+=(const ReadStats& o) {
  files += o.files;
  bytes += o.bytes;
  device_reads += o.device_reads;
  device_bytes += o.device_bytes;
  zero_fill_bytes += o.zero_fill_bytes;
  fallback_reads += o.fallback_reads;
  resolve_s += o.resolve_s;
  poll_sleeps += o.poll_sleeps;
  empty_polls += o.empty_polls;
  return *this;
}

namespace {

// A chunk's read.
struct Read : backends::KernelRequest {
  Chunk* slot = nullptr;
  static void done(backends::KernelRequest& r, int64_t res) {
    Chunk& s = *static_cast<Read&>(r).slot;
    s.res = res;
    s.done = true;
  }
};

template <class Q>
class KernelReader final : public PipelineReader {
 public:
  template <class... A>
  KernelReader(std::string root, uint32_t qd, size_t io_size, bool direct, A&&... queue_args)
      : PipelineReader(qd, io_size), root_(std::move(root)), direct_(direct), q_(std::forward<A>(queue_args)...),
        reads_(qd_) {
    // posix has always counted the files it opened, io_uring every file it was given.
    count_unopened_ = !std::is_same_v<Q, backends::PsyncQueue>;
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
    f.opened = true;
  }
  void close_file(PipeFile& f) override {
    if (f.fd >= 0) ::close(f.fd);
    f.fd = -1;
  }
  void issue(Chunk& s) override {
    Read& r = reads_[size_t(&s - slots_.data())];
    r.fd = s.file->fd;
    r.buf = s.buf;
    // O_DIRECT: a whole number of 4 KiB blocks; the read of the tail returns short.
    r.len = uint32_t(direct_ ? (s.len + 4095) & ~size_t(4095) : s.len);
    r.off = s.off;
    q_.template submit<Read>(r);
    ++st_.device_reads;
  }
  void flush() override {
    int r = q_.flush();
    if (r < 0) throw Error(Errc::system, fmt::format("io_uring_submit: {}", std::strerror(-r)));  // io_uring only
  }
  void reap(bool may_block) override {
    if constexpr (std::is_same_v<Q, backends::UringQueue>) {
      if (may_block && !q_.wait()) return;
    }
    q_.template reap<Read>();
  }
  void finish(Chunk& s) override {
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
  Q q_;
  std::vector<Read> reads_;
  std::vector<AlignedBuffer> bufs_;
};

class KernelBackend final : public FileBackend {
 public:
  KernelBackend(std::string root, const ReadOptions& o, bool uring, bool direct)
      : root_(std::move(root)), o_(o), uring_(uring), direct_(direct) {
    check_io_size(o_.io_size);
  }
  std::string name() const override {
    if (uring_) return direct_ ? "io_uring" : "io_uring-buffered";
    return direct_ ? "posix-direct" : "posix";
  }
  std::string describe() const override {
    if (uring_)
      return fmt::format("io_uring{}, {} reads of {} B in flight per thread", direct_ ? " + O_DIRECT" : " (buffered)",
                         o_.qd, o_.io_size);
    return direct_ ? fmt::format("pread, O_DIRECT, 4 KiB aligned {} B buffers, tail as a short aligned read",
                                 o_.io_size)
                   : fmt::format("pread through the page cache, {} B reads", o_.io_size);
  }
  std::unique_ptr<FileReader> make_reader(uint32_t) override {
    if (uring_)
      return std::make_unique<KernelReader<backends::UringQueue>>(root_, o_.qd, o_.io_size, direct_,
                                                                  backends::UringOptions{.entries = o_.qd});
    return std::make_unique<KernelReader<backends::PsyncQueue>>(root_, 1, o_.io_size, direct_);
  }

 private:
  std::string root_;
  ReadOptions o_;
  bool uring_, direct_;
};

}  // namespace

std::unique_ptr<FileBackend> make_kernel_path(const std::string& name, const std::string& root, const ReadOptions& o) {
  if (name == "posix" || name == "posix-direct")
    return std::make_unique<KernelBackend>(root, o, false, name == "posix-direct");
  if (name != "io_uring" && name != "io_uring-buffered")
    throw Error(Errc::not_supported, "path '" + name + "' has no implementation");
  std::string why;
  if (!uring_available(&why)) throw Error(Errc::not_supported, "io_uring: " + why);
  return std::make_unique<KernelBackend>(root, o, true, name == "io_uring");
}

}  // namespace aisio::io
