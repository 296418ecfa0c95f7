#include <fmt/format.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>

#include "common/error.hpp"
#include "extents/translate.hpp"
#include "io/hybrid_poll.hpp"
#include "io/pipeline.hpp"
#include "io/unvme.hpp"
#include "io/util.hpp"

namespace aisio::io {

namespace {

using extents::LbaRun;

// The commands of a chunk share one request: the last completion finishes the chunk.
struct ChunkRead : backends::UnvmeRequest {
  Chunk* slot = nullptr;
  static void done(backends::UnvmeRequest& r, nvme::Completion c) {
    Chunk* s = static_cast<ChunkRead&>(r).slot;
    if (!c.ok() && s->error.empty())
      s->error = fmt::format("{}: NVMe Read in chunk at file offset {}: {}", s->file->task->rel, s->off,
                             c.describe());
    if (--s->pending == 0) s->done = true;
  }
};

class UnvmeReader final : public PipelineReader {
 public:
  UnvmeReader(const NvmeAccess& dev, std::shared_ptr<ExtentSource> src, const ReadOptions& o)
      : PipelineReader(o.qd, o.io_size), dev_(dev), src_(std::move(src)), lba_(dev.lba_size),
        hybrid_(o.poll == PollMode::hybrid) {
    // Room for every chunk of the ring to be split over a few extents at once; more
    // runs than slots just make issue() reap until a command slot frees up.
    uint32_t depth = std::min<uint32_t>(std::max<uint32_t>(qd_ * 4, 32) + 1, dev_.max_queue_entries);
    q_.emplace(dev_, depth);
    max_nlb_ = uint32_t(std::max<size_t>(q_->queue_pair().max_transfer() / lba_, 1));
    topt_.lba_size = lba_;
    topt_.device_offset = src_->device_offset();
    topt_.max_nlb = max_nlb_;
    // A chunk's last LBA may run past its end by up to one LBA.
    reads_.resize(slots_.size());
    for (size_t i = 0; i < slots_.size(); ++i) {
      bufs_.push_back(dev_.dma->alloc(io_size_ + lba_));
      slots_[i].buf = bufs_.back().data();
      slot_buf_.push_back(&bufs_.back());
      reads_[i].slot = &slots_[i];
    }
    bounce_ = dev_.dma->alloc(size_t(max_nlb_) * lba_);
  }
  ~UnvmeReader() override {
    // Every command has completed when read() returns; the queue pair goes first.
    q_.reset();
  }

 protected:
  void open_file(PipeFile& f) override {
    auto t0 = std::chrono::steady_clock::now();
    try {
      f.rf = src_->resolve(f.task->rel);
      f.size = f.rf.size;
    } catch (const std::exception& e) {
      f.fail(fmt::format("resolve extents of {} ({}): {}", f.task->rel, src_->name(), e.what()));
    }
    st_.resolve_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  void issue(Chunk& s) override {
    auto& f = *s.file;
    topt_.file_size = f.size;
    try {
      s.runs = extents::translate(f.rf.extents, s.off, s.off + s.len, topt_);
    } catch (const std::exception& e) {
      s.error = fmt::format("{}: {}", f.task->rel, e.what());
      s.done = true;
      return;
    }
    const size_t i = size_t(&s - slots_.data());
    const DmaBuffer& buf = *slot_buf_[i];
    bool clean = true;
    for (const auto& r : s.runs) {
      if (r.zero_fill) continue;
      uint64_t rel = r.file_offset - s.off;
      bool last = r.file_offset + r.length == s.off + s.len;
      if (r.skip != 0 || rel % lba_ != 0 || (r.length % lba_ != 0 && !last)) clean = false;
    }
    if (!clean) {
      issue_bounced(s);
      return;
    }
    s.pending = 1;  // held until every run is submitted
    for (const auto& r : s.runs) {
      if (r.zero_fill) continue;
      ++s.pending;
      ++st_.device_reads;
      st_.device_bytes += uint64_t(r.nlb) * lba_;
      while (!q_->submit_io<ChunkRead>(reads_[i], backends::kRead, r.slba, r.nlb, buf, size_t(r.file_offset - s.off))) {
        // Out of command slots: ring what is queued and reap until one frees up.
        q_->flush();
        q_->reap<ChunkRead>();
      }
    }
    if (--s.pending == 0) s.done = true;
  }

  void flush() override { q_->flush(); }

  void reap(bool may_block) override {
    // Busy polling: the thread owns its queue pair and spins on the CQ phase tags. After
    // a long run of empty polls it yields the CPU once, so that a device thread sharing
    // the core (an in-process software controller on a small machine) can progress.
    // Hybrid: the first empty poll of a wait sleeps about half the usual wait instead.
    if (poll_once()) return;
    ++st_.empty_polls;
    // With many commands in flight, one wake-up may wait for a quarter of them: the
    // device keeps three quarters queued, and the reader wakes a few times per ring
    // instead of once per command (each wake-up a system call and two context switches).
    if (hybrid_ && may_block && hp_.idle(std::max<uint32_t>(1, q_->in_flight() / 4))) {
      st_.poll_sleeps = hp_.sleeps();
      poll_once();
      return;
    }
    if (++empty_polls_ % 1024 == 0) sched_yield();
  }

  void finish(Chunk& s) override {
    for (const auto& r : s.runs) {
      if (!r.zero_fill) continue;
      std::memset(s.buf + (r.file_offset - s.off), 0, r.length);
      st_.zero_fill_bytes += r.length;
    }
  }

 private:
  bool poll_once() {
    const uint32_t n = q_->reap<ChunkRead>();
    if (n == 0) return false;
    empty_polls_ = 0;
    if (hybrid_) hp_.progress(n);
    return true;
  }

  // Runs that do not start on an LBA boundary of the chunk (extents not aligned to
  // the namespace's LBAs): read one at a time into a bounce buffer and copy.
  void issue_bounced(Chunk& s) {
    for (const auto& r : s.runs) {
      if (r.zero_fill) continue;  // finish() fills these
      auto c = q_->queue_pair().read(dev_.nsid, r.slba, r.nlb, bounce_);
      ++st_.device_reads;
      ++st_.fallback_reads;
      st_.device_bytes += uint64_t(r.nlb) * lba_;
      if (!c.ok()) {
        s.error = fmt::format("{}: NVMe Read of {} blocks at LBA {}: {}", s.file->task->rel, r.nlb, r.slba,
                              c.describe());
        break;
      }
      std::memcpy(s.buf + (r.file_offset - s.off), bounce_.data() + r.skip, r.length);
    }
    s.done = true;
  }

  NvmeAccess dev_;
  std::shared_ptr<ExtentSource> src_;
  uint32_t lba_;
  uint32_t max_nlb_ = 0;
  extents::TranslateOptions topt_;
  std::optional<backends::UnvmeQueue> q_;
  std::vector<ChunkRead> reads_;
  std::deque<DmaBuffer> bufs_;
  std::vector<const DmaBuffer*> slot_buf_;
  DmaBuffer bounce_;
  uint32_t empty_polls_ = 0;
  bool hybrid_;
  HybridPoll hp_;
};

class UnvmeBackend final : public FileBackend {
 public:
  UnvmeBackend(NvmeAccess dev, std::shared_ptr<ExtentSource> src, const ReadOptions& o, std::string name)
      : dev_(std::move(dev)), src_(std::move(src)), o_(o), name_(std::move(name)) {
    check_io_size(o_.io_size);
  }
  std::string name() const override { return name_; }
  std::string describe() const override {
    return fmt::format("our NVMe driver on {} (nsid {}, {} B LBAs), extents by {}; {} chunks of {} B in flight "
                       "per thread, polled ({})",
                       dev_.describe, dev_.nsid, dev_.lba_size, src_->describe(), o_.qd, o_.io_size, poll_mode());
  }
  std::unique_ptr<FileReader> make_reader(uint32_t) override { return std::make_unique<UnvmeReader>(dev_, src_, o_); }

 private:
  std::string poll_mode() const {
    if (o_.poll == PollMode::spin) return "spin";
    return fmt::format("hybrid: after an empty poll, sleep half the time left to the expected completion, "
                       "{}..{} us, and back off once overdue",
                       HybridPoll::kMinStepNs / 1000, HybridPoll::kMaxSleepNs / 1000);
  }

  NvmeAccess dev_;
  std::shared_ptr<ExtentSource> src_;
  ReadOptions o_;
  std::string name_;
};

}  // namespace

std::unique_ptr<FileBackend> make_unvme_path(NvmeAccess dev, std::shared_ptr<ExtentSource> extents, const ReadOptions& o,
                                      std::string name) {
  return std::make_unique<UnvmeBackend>(std::move(dev), std::move(extents), o, std::move(name));
}

}  // namespace aisio::io
