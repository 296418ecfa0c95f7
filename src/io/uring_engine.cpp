// io_uring (liburing): up to qd reads in flight per thread across the files of a
// batch; O_DIRECT with 4 KiB aligned buffers by default, or buffered.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.hpp"
#include "io/engine.hpp"
#include "io/pipeline.hpp"
#include "io/util.hpp"

#if AISIO_HAVE_URING
#include <liburing.h>
#endif

namespace aisio::io {

#if AISIO_HAVE_URING
namespace {

class UringEngine final : public PipelineEngine {
 public:
  UringEngine(std::string root, const EngineOptions& o, bool direct)
      : PipelineEngine(o.qd, o.io_size), root_(std::move(root)), direct_(direct) {
    int r = io_uring_queue_init(qd_, &ring_, 0);
    if (r < 0) throw Error(Errc::system, fmt::format("io_uring_queue_init({}): {}", qd_, std::strerror(-r)));
    for (auto& s : slots_) {
      bufs_.emplace_back(io_size_);
      s.buf = bufs_.back().data();
    }
  }
  ~UringEngine() override { io_uring_queue_exit(&ring_); }

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
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) {  // cannot happen with <= qd in flight; submit and retry once
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
      if (!sqe) {
        s.error = "io_uring: no free submission entry";
        s.done = true;
        return;
      }
    }
    // O_DIRECT: a whole number of 4 KiB blocks; the read of the tail returns short.
    size_t want = direct_ ? (s.len + 4095) & ~size_t(4095) : s.len;
    io_uring_prep_read(sqe, s.file->fd, s.buf, unsigned(want), s.off);
    io_uring_sqe_set_data(sqe, &s);
    ++st_.device_reads;
  }
  void flush() override {
    int r = io_uring_submit(&ring_);
    if (r < 0) throw Error(Errc::system, fmt::format("io_uring_submit: {}", std::strerror(-r)));
  }
  void reap(bool may_block) override {
    io_uring_cqe* cqe = nullptr;
    int r = may_block ? io_uring_wait_cqe(&ring_, &cqe) : io_uring_peek_cqe(&ring_, &cqe);
    if (r == -EAGAIN || r == -EINTR) return;
    if (r < 0) throw Error(Errc::system, fmt::format("io_uring_wait_cqe: {}", std::strerror(-r)));
    unsigned head, n = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      auto* s = static_cast<PipeSlot*>(io_uring_cqe_get_data(cqe));
      s->res = cqe->res;
      s->done = true;
      if (cqe->res > 0) st_.device_bytes += uint64_t(cqe->res);
      ++n;
    }
    io_uring_cq_advance(&ring_, n);
  }
  void finish(PipeSlot& s) override {
    std::string path = join_path(root_, s.file->task->rel);
    if (s.res < 0) {
      s.error = fmt::format("read {} at offset {}: {}", path, s.off, std::strerror(int(-s.res)));
      return;
    }
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
  io_uring ring_{};
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
  return std::make_unique<UringPath>(root, o, direct);
}

#else  // no liburing

std::unique_ptr<Path> make_uring_path(const std::string&, const EngineOptions&, bool) {
  throw Error(Errc::not_supported, "io_uring: not built (liburing was not found at configure time)");
}

#endif

}  // namespace aisio::io
