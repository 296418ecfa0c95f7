// Kernel engines: io_uring (interrupt-driven, --hipri = IORING_SETUP_IOPOLL, --sqpoll =
// IORING_SETUP_SQPOLL) and psync (pread/pwrite, one I/O at a time per thread), driven
// by the same options, generators and statistics as the unvme engine.
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/error.hpp"
#include "perf/engines.hpp"

#if AISIO_HAVE_URING
#include <liburing.h>
#endif

namespace aisio::perf {

namespace {

struct Buffer {
  explicit Buffer(size_t n) {
    n = (n + 4095) & ~size_t(4095);
    p = static_cast<uint8_t*>(std::aligned_alloc(4096, n));
    if (!p) throw Error(Errc::no_memory, fmt::format("cannot allocate {} bytes of I/O buffers", n));
    // A recognisable pattern for writes, and every page touched before the run.
    for (size_t i = 0; i < n; ++i) p[i] = uint8_t(i * 131 + 7);
    len = n;
  }
  ~Buffer() { std::free(p); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  uint8_t* p = nullptr;
  size_t len = 0;
};

struct KDev {
  std::string name;
  int fd = -1;
  int file_index = 0;  // in the ring's registered files
  BlockGen gen;
  uint64_t region_start = 0;
};

std::string io_error(const KDev& d, uint8_t op, uint64_t off, uint32_t bs, long res) {
  if (res < 0)
    return fmt::format("{} {} of {} bytes at offset {}: {}", d.name, op ? "write" : "read", bs, off,
                       std::strerror(int(-res)));
  return fmt::format("{} {} of {} bytes at offset {}: short transfer ({} bytes)", d.name, op ? "write" : "read", bs,
                     off, res);
}

std::vector<KDev> make_kdevs(const PerfOptions& o, const std::vector<KernelDevice>& devs, uint32_t thread) {
  std::vector<KDev> out;
  for (uint32_t i = 0; i < devs.size(); ++i) {
    Region r = make_region(o, devs[i].name, devs[i].capacity, devs[i].lba_size);
    KDev k;
    k.name = devs[i].name;
    k.fd = devs[i].fd;
    k.file_index = int(i);
    k.gen = BlockGen(rw_random(o.rw), r.blocks, seq_start(r, thread, o.threads), lba_seed(o, thread, i));
    k.region_start = r.start;
    out.push_back(std::move(k));
  }
  return out;
}

// ---------------------------------------------------------------------------------
// psync
class PsyncWorker final : public Worker {
 public:
  PsyncWorker(const PerfOptions& o, const std::vector<KernelDevice>& devs, uint32_t thread)
      : o_(o), devs_(make_kdevs(o, devs, thread)), buf_(o.bs) {}

  void run(ThreadCtx& t) override {
    t.begin();
    const bool mixed = rw_mixed(o_.rw);
    const uint32_t bs = o_.bs;
    const size_t n = devs_.size();
    size_t di = 0;
    while (t.remaining) {
      KDev& d = devs_[di];
      if (++di == n) di = 0;
      --t.remaining;
      uint8_t op = mixed ? t.pick_op() : t.fixed_op;
      uint64_t off = d.region_start + d.gen.next() * bs;
      uint64_t t0 = t.sample() ? rdtsc() : 0;
      ssize_t r = op ? ::pwrite(d.fd, buf_.p, bs, off_t(off)) : ::pread(d.fd, buf_.p, bs, off_t(off));
      if (r != ssize_t(bs)) [[unlikely]] {
        t.fail(io_error(d, op, off, bs, r < 0 ? -long(errno) : long(r)));
        break;
      }
      if (t0) t.record(op, t0);
      ++t.done[op];
      t.tick();
    }
    t.end();
  }

 private:
  const PerfOptions& o_;
  std::vector<KDev> devs_;
  Buffer buf_;
};

// ---------------------------------------------------------------------------------
// io_uring
#if AISIO_HAVE_URING
struct USlot {
  KDev* dev;
  uint8_t* buf;
  uint64_t off;
  uint64_t t0;
  uint16_t buf_index;
  uint8_t op;
};

class UringWorker final : public Worker {
 public:
  UringWorker(const PerfOptions& o, const std::vector<KernelDevice>& devs, uint32_t thread)
      : o_(o), devs_(make_kdevs(o, devs, thread)), buf_(size_t(o.qd) * devs.size() * o.bs) {
    const uint32_t slots = o.qd * uint32_t(devs_.size());
    io_uring_params p{};
    if (o.hipri) p.flags |= IORING_SETUP_IOPOLL;
    if (o.sqpoll) {
      p.flags |= IORING_SETUP_SQPOLL;
      p.sq_thread_idle = 1000;  // ms
    }
    int r = io_uring_queue_init_params(slots, &ring_, &p);
    if (r < 0)
      throw Error(Errc::not_supported, fmt::format("io_uring_queue_init({} entries{}{}): {}", slots,
                                                   o.hipri ? ", IOPOLL" : "", o.sqpoll ? ", SQPOLL" : "",
                                                   std::strerror(-r)));
    inited_ = true;
    std::vector<int> fds;
    for (auto& d : devs_) fds.push_back(d.fd);
    fixed_ = o.fixed_bufs;
    if (fixed_) {
      r = io_uring_register_files(&ring_, fds.data(), unsigned(fds.size()));
      if (r < 0) throw Error(Errc::system, fmt::format("io_uring_register_files: {}", std::strerror(-r)));
      iovec iov{buf_.p, buf_.len};
      r = io_uring_register_buffers(&ring_, &iov, 1);
      if (r < 0)
        throw Error(Errc::system, fmt::format("io_uring_register_buffers ({} bytes): {} (RLIMIT_MEMLOCK?)", buf_.len,
                                              std::strerror(-r)));
    }
    slots_.resize(slots);
    for (uint32_t i = 0; i < slots; ++i) {
      USlot& s = slots_[i];
      s.dev = &devs_[i / o.qd];
      s.buf = buf_.p + size_t(i) * o.bs;
      s.off = 0;
      s.t0 = 0;
      s.buf_index = 0;
      s.op = read_percent(o.rw, o.rwmix) == 0 ? 1 : 0;
    }
  }
  ~UringWorker() override {
    if (inited_) io_uring_queue_exit(&ring_);
  }

  void run(ThreadCtx& t) override {
    t.begin();
    const bool lat = o_.lat, mixed = rw_mixed(o_.rw);
    if (lat) mixed ? loop<true, true>(t) : loop<true, false>(t);
    else mixed ? loop<false, true>(t) : loop<false, false>(t);
    t.end();
  }

 private:
  template <bool kLat, bool kMixed>
  void prep(ThreadCtx& t, USlot& s) {
    KDev& d = *s.dev;
    const uint32_t bs = o_.bs;
    s.off = d.region_start + d.gen.next() * bs;
    if constexpr (kMixed) s.op = t.pick_op();
    if constexpr (kLat) s.t0 = t.sample() ? rdtsc() : 0;
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);  // never null: in flight <= ring entries
    if (fixed_) {
      if (s.op) io_uring_prep_write_fixed(sqe, d.file_index, s.buf, bs, s.off, s.buf_index);
      else io_uring_prep_read_fixed(sqe, d.file_index, s.buf, bs, s.off, s.buf_index);
      sqe->flags |= IOSQE_FIXED_FILE;
    } else {
      if (s.op) io_uring_prep_write(sqe, d.fd, s.buf, bs, s.off);
      else io_uring_prep_read(sqe, d.fd, s.buf, bs, s.off);
    }
    io_uring_sqe_set_data(sqe, &s);
    ++inflight_;
  }

  template <bool kLat, bool kMixed>
  void loop(ThreadCtx& t) {
    for (auto& s : slots_) {
      if (t.remaining == 0) break;
      --t.remaining;
      prep<kLat, kMixed>(t, s);
    }
    const bool sqpoll = o_.sqpoll;
    for (;;) {
      int r = sqpoll ? io_uring_submit(&ring_) : io_uring_submit_and_wait(&ring_, 1);
      if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) [[unlikely]] {
        t.fail(fmt::format("io_uring_enter: {}", std::strerror(-r)));
        break;  // what is in flight ends with the ring
      }
      unsigned head, n = 0;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++n;
        --inflight_;
        USlot& s = *static_cast<USlot*>(io_uring_cqe_get_data(cqe));
        if (cqe->res != int(o_.bs)) [[unlikely]] {
          t.fail(io_error(*s.dev, s.op, s.off, o_.bs, cqe->res));
          continue;
        }
        if constexpr (kLat) {
          if (s.t0) t.record(s.op, s.t0);
        }
        ++t.done[s.op];
        if (t.remaining == 0) continue;
        --t.remaining;
        prep<kLat, kMixed>(t, s);
      }
      io_uring_cq_advance(&ring_, n);
      t.idle_loops += n == 0;
      t.tick();
      if (t.remaining == 0 && inflight_ == 0) break;
    }
  }

  const PerfOptions& o_;
  std::vector<KDev> devs_;
  Buffer buf_;
  io_uring ring_{};
  bool inited_ = false;
  bool fixed_ = true;
  std::vector<USlot> slots_;
  uint32_t inflight_ = 0;
};
#endif

}  // namespace

std::unique_ptr<Worker> make_uring_worker(const PerfOptions& o, const std::vector<KernelDevice>& devs,
                                          uint32_t thread) {
#if AISIO_HAVE_URING
  return std::make_unique<UringWorker>(o, devs, thread);
#else
  (void)o, (void)devs, (void)thread;
  throw Error(Errc::not_supported, "--engine io_uring: this build has no liburing");
#endif
}

std::unique_ptr<Worker> make_psync_worker(const PerfOptions& o, const std::vector<KernelDevice>& devs,
                                          uint32_t thread) {
  return std::make_unique<PsyncWorker>(o, devs, thread);
}

}  // namespace aisio::perf
