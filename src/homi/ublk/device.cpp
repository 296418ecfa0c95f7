#include "homi/ublk/device.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/error.hpp"
#include "homi/log.hpp"
#include "homi/ublk/params.hpp"

#if AISIO_HAVE_URING
#include <liburing.h>
#endif

namespace aisio::homi::ublk {

namespace {
using Clock = std::chrono::steady_clock;
constexpr size_t PAGE = 4096;
size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }
// The kernel gives a disk of one hardware queue mq-deadline and one of several (the nvme
// driver's) none. Behind a ublk disk is an NVMe queue pair, which gains nothing from
// sorting, and the scheduler's lock and dispatch cost showed at QD 32 (bench/results/
// ublk): the disk gets none, as the nvme driver's would. Best effort: a kernel without
// the knob keeps its default.
void use_no_scheduler(const std::string& disk) {
  const std::string path = "/sys/block/" + disk + "/queue/scheduler";
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  bool ok = fd >= 0 && write(fd, "none", 4) == 4;
  const int err = errno;  // close() may overwrite it
  if (fd >= 0) close(fd);
  if (!ok) log(Level::info, "ublk: could not set the I/O scheduler of /dev/{} to none ({}): it keeps the kernel's",
               disk, std::strerror(err));
}
// mmap offset of queue q's descriptor array: the kernel spaces queues by the largest
// possible array (UBLK_MAX_QUEUE_DEPTH descriptors).
uint64_t desc_offset(uint16_t q) { return CMD_BUF_OFFSET + uint64_t(q) * round_up(MAX_QUEUE_DEPTH * sizeof(IoDesc), PAGE); }
}  // namespace

#if AISIO_HAVE_URING

struct Device::Queue {
  Device* dev = nullptr;
  uint16_t index = 0;
  uint16_t depth = 0;
  std::unique_ptr<nvme::QueuePair> qp;
  std::vector<DmaBuffer> bufs;
  const IoDesc* descs = nullptr;
  size_t desc_bytes = 0;
  std::unique_ptr<Translator> tr;
  io_uring ring{};
  bool ring_ok = false;
  std::thread thread;
  std::atomic<bool> stop{false};
  std::atomic<int> state{0};  // 0 starting, 1 every tag fetched, < 0: -errno
  uint32_t live_tags = 0;

  ~Queue() {
    if (thread.joinable()) {
      stop = true;
      thread.join();
    }
    if (ring_ok) io_uring_queue_exit(&ring);
    if (descs) munmap(const_cast<IoDesc*>(descs), desc_bytes);
  }

  void prep(uint32_t op, uint16_t tag, int32_t result) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    while (!sqe) {  // not expected: one SQE per tag at most, and the SQ has depth entries
      io_uring_submit(&ring);
      sqe = io_uring_get_sqe(&ring);
    }
    std::memset(sqe, 0, 128);
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = dev->char_fd_;
    sqe->cmd_op = dev->ctl_.features() & F_CMD_IOCTL_ENCODE ? ioc_io(op) : op;
    auto* c = reinterpret_cast<IoCmd*>(sqe->cmd);
    c->q_id = index;
    c->tag = tag;
    c->result = result;
    c->addr = uint64_t(uintptr_t(bufs[tag].data()));
    sqe->user_data = tag;
  }

  static void done(void* ctx, uint16_t tag, int32_t result) {
    static_cast<Queue*>(ctx)->prep(IO_COMMIT_AND_FETCH_REQ, tag, result);
  }

  // The ring belongs to this thread: with IORING_SETUP_SINGLE_ISSUER the kernel holds
  // the thread that creates it as the only submitter, and DEFER_TASKRUN then runs the
  // ublk driver's task work (a new request) only when that thread enters the kernel to
  // reap, instead of interrupting it (TWA_SIGNAL: an IPI and a kernel entry per wake-up,
  // each costly under TCG). TASKRUN_FLAG sets IORING_SQ_TASKRUN in the shared SQ flags
  // while such work waits, so the spinning loop sees new requests without a system call.
  // Older kernels: COOP_TASKRUN (no IPI, work runs on our next entry), then neither.
  int open_ring(unsigned entries) {
    static constexpr unsigned modes[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, 0};
    int r = -EINVAL;
    for (unsigned m : modes) {
      r = io_uring_queue_init(entries, &ring, IORING_SETUP_SQE128 | m);
      if (r == 0) {
        ring_mode = m;
        ring_ok = true;
        io_uring_register_ring_fd(&ring);  // skips the fd lookup per enter; optional
        return 0;
      }
      if (r != -EINVAL) break;
    }
    return r;
  }
  const char* mode_name() const {
    return ring_mode & IORING_SETUP_DEFER_TASKRUN ? "deferred task work"
           : ring_mode & IORING_SETUP_COOP_TASKRUN ? "cooperative task work"
                                                   : "signalled task work";
  }
  // Task work (new requests) waits for our next entry with GETEVENTS.
  bool taskrun_pending() const {
    return (ring_mode & IORING_SETUP_TASKRUN_FLAG) && (IO_URING_READ_ONCE(*ring.sq.kflags) & IORING_SQ_TASKRUN);
  }

  void run(unsigned entries) {
    int r = open_ring(entries);
    if (r < 0) {
      state = r;
      return;
    }
    for (uint16_t t = 0; t < depth; ++t) prep(IO_FETCH_REQ, t, 0);
    r = io_uring_submit(&ring);
    if (r < 0) {
      state = r;
      return;
    }
    live_tags = depth;
    state = 1;
    auto last_check = Clock::now();
    uint32_t idle_spins = 0, check_spins = 0, empty_passes = 0;
    while (live_tags) {
      const bool busy = tr->busy() > 0;
      io_uring_cqe* cqe = nullptr;
      ++(busy ? loops_busy : loops_idle);
      if (busy) {
        // While NVMe commands are out we poll their CQ and enter the kernel only when
        // there is something to do there: one entry submits every COMMIT_AND_FETCH of
        // the last pass and runs the task work that brings new requests.
        if (io_uring_sq_ready(&ring) || taskrun_pending()) {
          ++enters;
          io_uring_submit_and_get_events(&ring);
          empty_passes = 0;
        } else if (++empty_passes >= NAP_AFTER) {
          // Nothing moved for a while: nap in the kernel, where a new request wakes us
          // at once, instead of spinning on. A spinning thread takes a CPU from the
          // programs whose I/O it serves (under TCG also from the emulated controller);
          // the nap brought ublk's CPU per I/O at QD 32 down to the nvme driver's.
          __kernel_timespec ts{0, NAP_NS};
          ++enters;
          ++naps;
          io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, nullptr);
          empty_passes = 0;
        }
      } else {
        __kernel_timespec ts{0, 100 * 1000 * 1000};
        ++enters;
        r = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, nullptr);
        if (r < 0 && r != -ETIME) ++wait_errors;
      }
      unsigned head, seen = 0;
      io_uring_for_each_cqe(&ring, head, cqe) {
        ++seen;
        const uint16_t tag = uint16_t(cqe->user_data);
        if (cqe->res == IO_RES_OK && tag < depth) {
          tr->start(tag, descs[tag], bufs[tag]);
        } else {
          // -ENODEV: the device is stopping (or its server is being replaced); anything
          // else is a refusal of our command: either way this tag is done.
          if (cqe->res != -ENODEV)
            log(Level::warn, "ublk {} queue {}: tag {}: {}", dev->dev_id_, index, tag, std::strerror(-cqe->res));
          --live_tags;
        }
      }
      io_uring_cq_advance(&ring, seen);
      requests += seen;
      if (tr->poll() || seen) empty_passes = 0;
      if (!seen && !tr->busy()) ++idle_spins;
      else idle_spins = 0;
      // CSTS.CFS: the queue pair fails what is in flight; new requests end with EIO at
      // once instead of waiting for a timeout each. No clock read per spin: under QEMU
      // TCG the guest's clock can be an emulated HPET, whose every read is a trip into
      // the emulator that slows the device down (QD 1 fell to a few hundred IOPS).
      if (++check_spins >= 4096 || (!busy && Clock::now() - last_check > std::chrono::milliseconds(100))) {
        check_spins = 0;
        last_check = Clock::now();
        bool fatal = dev->ctrl_.fatal();
        if (fatal && !tr->failed())
          log(Level::error, "ublk {} queue {}: controller fatal status (CSTS.CFS): failing I/O with EIO", dev->dev_id_,
              index);
        tr->set_failed(fatal);
      }
      if (stop.load(std::memory_order_relaxed) && !tr->busy() && idle_spins > 2) break;
    }
    io_uring_submit(&ring);
    log(Level::debug, "ublk {} queue {} ({}): {} requests, {} kernel entries, {} idle and {} busy loop passes, "
        "{} naps, {} wait errors", dev->dev_id_, index, mode_name(), requests, enters, loops_idle, loops_busy, naps,
        wait_errors);
  }
  // Busy passes with nothing reaped or submitted before a nap (a pass is about 0.25 us
  // in the TCG guest, far less on hardware), and the nap's limit.
  static constexpr uint32_t NAP_AFTER = 64;
  static constexpr long NAP_NS = 20 * 1000;
  uint64_t loops_idle = 0, loops_busy = 0, wait_errors = 0, enters = 0, requests = 0, naps = 0;
  unsigned ring_mode = 0;  // the IORING_SETUP_* task-work flags the ring got
};

std::unique_ptr<Device> Device::create(Control& ctl, nvme::Controller& ctrl, uint32_t nsid, const ExportConfig& cfg,
                                       const std::string& who) {
  const nvme::Namespace& ns = ctrl.ns(nsid);
  check_lba_format(ns, who);
  std::unique_ptr<Device> d(new Device(ctl, ctrl, nsid));
  const uint64_t want = F_USER_RECOVERY | F_USER_RECOVERY_REISSUE | F_CMD_IOCTL_ENCODE;
  const uint64_t flags = ctl.features() & want;
  // Largest request: the configured size, at most MDTS, in whole blocks.
  uint32_t max_io = cfg.max_io_kib << 10;
  if (ctrl.mdts_bytes()) max_io = uint32_t(std::min<size_t>(max_io, ctrl.mdts_bytes()));
  max_io = max_io / ns.lba_size * ns.lba_size;
  d->max_io_bytes_ = max_io;
  NamespaceGeometry geo = make_geometry(ctrl.id(), ns);

  try {
    std::optional<DevInfo> old;
    if (cfg.dev_id >= 0) old = ctl.info(uint32_t(cfg.dev_id));
    // A homid that was just killed: its io_uring is torn down asynchronously, so the
    // device may still say LIVE for a moment before it is QUIESCED for recovery.
    for (int i = 0; i < 50 && old && old->state == S_DEV_LIVE && (old->flags & F_USER_RECOVERY) &&
                    old->ublksrv_pid > 0 && kill(old->ublksrv_pid, 0) != 0 && errno == ESRCH;
         ++i) {
      usleep(100000);
      old = ctl.info(uint32_t(cfg.dev_id));
    }
    if (old) {
      if (old->state == S_DEV_QUIESCED && (old->flags & F_USER_RECOVERY)) {
        d->info_ = *old;
        d->dev_id_ = old->dev_id;
        d->recovered_ = true;
        if (old->queue_depth > cfg.depth || old->max_io_buf_bytes > max_io)
          throw Error(Errc::invalid_argument,
                      fmt::format("{}: ublk device {} left by a previous homid has depth {} and {}-byte requests; this "
                                  "configuration serves depth {} and {} bytes: restore it to recover the device",
                                  who, old->dev_id, old->queue_depth, old->max_io_buf_bytes, cfg.depth, max_io));
        // The old server's char device must be released first; it is, once it died.
        int r = -EBUSY;
        for (int i = 0; i < 50 && r == -EBUSY; ++i) {
          r = ctl.run(CMD_START_USER_RECOVERY, d->dev_id_, nullptr, 0);
          if (r == -EBUSY) usleep(100000);
        }
        if (r < 0) throw_errno(fmt::format("{}: ublk START_USER_RECOVERY of device {}", who, d->dev_id_), -r);
      } else {
        throw Error(Errc::invalid_argument,
                    fmt::format("{}: ublk device id {} is taken (/dev/ublkb{} is {} with server pid {}): choose another "
                                "ublk_id for namespace {} or delete that device",
                                who, cfg.dev_id, cfg.dev_id,
                                old->state == S_DEV_LIVE ? "live" : old->state == S_DEV_QUIESCED ? "quiesced" : "not started",
                                old->ublksrv_pid, nsid));
      }
    } else {
      DevInfo in{};
      in.nr_hw_queues = cfg.queues;
      in.queue_depth = cfg.depth;
      in.max_io_buf_bytes = max_io;
      in.dev_id = cfg.dev_id >= 0 ? uint32_t(cfg.dev_id) : UINT32_MAX;
      in.ublksrv_pid = getpid();
      in.flags = flags;
      d->info_ = ctl.add(in);
      d->added_ = true;
      d->dev_id_ = d->info_.dev_id;
      if (d->info_.nr_hw_queues != cfg.queues)
        log(Level::warn, "{}: ublk device {}: the kernel allows {} of the {} queues asked for (one per CPU at most)",
            who, d->dev_id_, d->info_.nr_hw_queues, cfg.queues);
      ctl.set_params(d->dev_id_, make_params(ctrl.id(), ns, max_io));
    }
    d->open_queues(geo);
    if (d->recovered_) {
      ctl.end_recovery(d->dev_id_, getpid());
    } else {
      ctl.start(d->dev_id_, getpid());
    }
    d->started_ = true;
    use_no_scheduler(d->disk_name());
  } catch (...) {
    d->teardown();
    throw;
  }
  log(Level::info, "{}: namespace {} exported as /dev/ublkb{} ({}{} queue(s) x {} tags, {}-byte blocks, {} KiB requests, "
      "features {})",
      who, nsid, d->dev_id_, d->recovered_ ? "recovered from the previous homid, " : "", d->queues_.size(),
      d->info_.queue_depth, ns.lba_size, max_io >> 10, d->info_.flags & F_USER_RECOVERY ? "USER_RECOVERY" : "no recovery");
  if (!(ctl.features() & F_USER_RECOVERY))
    log(Level::warn, "ublk: this kernel has no USER_RECOVERY: if homid dies, /dev/ublkb{} fails its I/O and is removed",
        d->dev_id_);
  return d;
}

void Device::open_queues(const NamespaceGeometry& geo) {
  const std::string cdev = "/dev/ublkc" + std::to_string(dev_id_);
  for (int i = 0; i < 100 && char_fd_ < 0; ++i) {  // devtmpfs creates the node shortly after ADD_DEV
    char_fd_ = open(cdev.c_str(), O_RDWR | O_CLOEXEC);
    if (char_fd_ < 0 && errno != ENOENT) throw_errno("open " + cdev);
    if (char_fd_ < 0) usleep(20000);
  }
  if (char_fd_ < 0) throw Error(Errc::system, cdev + " did not appear after ADD_DEV");
  const uint16_t depth = info_.queue_depth;
  if (ctrl_.io_queue_limit() == 0) throw Error(Errc::no_memory, "the controller granted no I/O queue pairs");
  for (uint16_t q = 0; q < info_.nr_hw_queues; ++q) {
    auto qu = std::make_unique<Queue>();
    qu->dev = this;
    qu->index = q;
    qu->depth = depth;
    try {
      qu->qp = ctrl_.create_queue_pair({.depth = uint32_t(depth) + 1});
    } catch (const Error& e) {
      throw Error(Errc::no_memory, fmt::format("ublk device {} queue {}: no NVMe I/O queue pair left for the kernel path "
                                               "({}); lower ublk_queues or raise io_queues",
                                               dev_id_, q, e.what()));
    }
    qu->bufs.reserve(depth);
    for (uint16_t t = 0; t < depth; ++t) qu->bufs.push_back(ctrl_.dma()->alloc(max_io_bytes_, PAGE));
    qu->desc_bytes = round_up(size_t(depth) * sizeof(IoDesc), PAGE);
    void* m = mmap(nullptr, qu->desc_bytes, PROT_READ, MAP_SHARED | MAP_POPULATE, char_fd_, off_t(desc_offset(q)));
    if (m == MAP_FAILED) throw_errno(fmt::format("mmap the descriptors of {} queue {}", cdev, q));
    qu->descs = static_cast<const IoDesc*>(m);
    qu->tr = std::make_unique<Translator>(*qu->qp, geo, depth, &Queue::done, qu.get());
    unsigned entries = 1;
    while (entries < depth) entries <<= 1;
    Queue* raw = qu.get();
    queues_.push_back(std::move(qu));
    raw->thread = std::thread([raw, entries] { raw->run(entries); });
    while (raw->state.load() == 0) usleep(1000);
    if (raw->state.load() < 0)
      throw_errno(fmt::format("ublk queue {} of {}: {}", q, cdev, raw->ring_ok ? "FETCH_REQ" : "io_uring_queue_init"),
                  -raw->state.load());
    log(Level::info, "ublk {} queue {}: io_uring with {}", dev_id_, q, raw->mode_name());
  }
}

void Device::teardown() noexcept {
  if (started_) {
    try {
      ctl_.stop(dev_id_);  // returns after del_gendisk: the kernel has drained the disk
    } catch (const std::exception& e) {
      log(Level::error, "ublk device {}: {}", dev_id_, e.what());
    }
    started_ = false;
  }
  for (auto& q : queues_) q->stop = true;
  queues_.clear();  // joins the threads, closes their rings, unmaps the descriptors
  if (char_fd_ >= 0) close(char_fd_);
  char_fd_ = -1;
  if (added_ || recovered_) {
    int r = ctl_.run(CMD_DEL_DEV, dev_id_, nullptr, 0);
    if (r < 0) log(Level::error, "ublk DEL_DEV of device {}: {}", dev_id_, std::strerror(-r));
    added_ = recovered_ = false;
  }
}

#else  // built without liburing

struct Device::Queue {
  uint16_t index = 0;
  std::unique_ptr<nvme::QueuePair> qp;
  std::unique_ptr<Translator> tr;
};
std::unique_ptr<Device> Device::create(Control&, nvme::Controller&, uint32_t, const ExportConfig&, const std::string&) {
  throw Error(Errc::not_supported, "this homid was built without liburing: ublk export is not available");
}
void Device::open_queues(const NamespaceGeometry&) {}
void Device::teardown() noexcept {}

#endif

Device::Device(Control& ctl, nvme::Controller& ctrl, uint32_t nsid) : ctl_(ctl), ctrl_(ctrl), nsid_(nsid) {}
Device::~Device() { teardown(); }

wire::UblkStat Device::stat(uint32_t ctrl) const {
  wire::UblkStat u;
  u.ctrl = ctrl;
  u.dev_id = dev_id_;
  u.nsid = nsid_;
  u.path = "/dev/" + disk_name();
  u.queues = uint16_t(queues_.size());
  u.depth = info_.queue_depth;
  u.max_io_bytes = max_io_bytes_;
  u.recovered = recovered_;
  for (auto& q : queues_) {
    const QueueCounters& c = q->tr->counters();
    if (!u.qids.empty()) u.qids += ',';
    u.qids += std::to_string(q->qp->qid());
    u.reads += c.reads.load(std::memory_order_relaxed);
    u.writes += c.writes.load(std::memory_order_relaxed);
    u.flushes += c.flushes.load(std::memory_order_relaxed);
    u.discards += c.discards.load(std::memory_order_relaxed);
    u.write_zeroes += c.write_zeroes.load(std::memory_order_relaxed);
    u.errors += c.errors.load(std::memory_order_relaxed);
    u.bytes_read += c.bytes_read.load(std::memory_order_relaxed);
    u.bytes_written += c.bytes_written.load(std::memory_order_relaxed);
  }
  return u;
}

}  // namespace aisio::homi::ublk
