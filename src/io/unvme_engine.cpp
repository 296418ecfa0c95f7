#include <fmt/format.h>
#include <sched.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "common/error.hpp"
#include "io/hybrid_poll.hpp"
#include "io/lba_reader.hpp"
#include "io/unvme.hpp"
#include "io/util.hpp"

namespace aisio::io {

namespace {

// The commands of a chunk share one request: the last completion finishes the chunk.
struct ChunkRead : backends::UnvmeRequest {
  Chunk* slot = nullptr;
  static void done(backends::UnvmeRequest& r, nvme::Completion c) {
    LbaRunReader::command_done(*static_cast<ChunkRead&>(r).slot, c, "NVMe Read");
  }
};

class UnvmeReader final : public LbaRunReader {
 public:
  UnvmeReader(const backends::UnvmeTarget& dev, std::shared_ptr<ExtentSource> src, const ReadOptions& o)
      : LbaRunReader(o, std::move(src), dev.lba_size), dev_(dev), hybrid_(o.poll == PollMode::hybrid) {
    q_.emplace(dev_, queue_depth(dev_.max_queue_entries));
    set_max_transfer(q_->queue_pair().max_transfer());
    // A chunk's last LBA may run past its end by up to one LBA.
    reads_.resize(slots_.size());
    for (size_t i = 0; i < slots_.size(); ++i) {
      bufs_.push_back(dev_.dma->alloc(io_size_ + lba_));
      slots_[i].buf = bufs_.back().data();
      slot_buf_.push_back(&bufs_.back());
      reads_[i].slot = &slots_[i];
    }
    bounce_ = dev_.dma->alloc(size_t(topt_.max_nlb) * lba_);
  }
  ~UnvmeReader() override {
    // Every command has completed when read() returns; the queue pair goes first.
    q_.reset();
  }

 protected:
  void issue(Chunk& s) override {
    if (!translate(s)) return;
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
      count_read(r, false);
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
      count_read(r, true);
      if (!c.ok()) {
        s.error = fmt::format("{}: NVMe Read of {} blocks at LBA {}: {}", s.file->task->rel, r.nlb, r.slba,
                              c.describe());
        break;
      }
      std::memcpy(s.buf + (r.file_offset - s.off), bounce_.data() + r.skip, r.length);
    }
    s.done = true;
  }

  backends::UnvmeTarget dev_;
  std::optional<backends::UnvmeQueue> q_;
  std::vector<ChunkRead> reads_;
  std::deque<DmaBuffer> bufs_;
  std::vector<const DmaBuffer*> slot_buf_;
  DmaBuffer bounce_;
  uint32_t empty_polls_ = 0;
  bool hybrid_;
  HybridPoll hp_;
};

std::string poll_mode(PollMode m) {
  if (m == PollMode::spin) return "spin";
  return fmt::format("hybrid: after an empty poll, sleep half the time left to the expected completion, "
                     "{}..{} us, and back off once overdue",
                     HybridPoll::kMinStepNs / 1000, HybridPoll::kMaxSleepNs / 1000);
}

}  // namespace

std::unique_ptr<FileBackend> make_unvme_path(backends::UnvmeTarget dev, std::shared_ptr<ExtentSource> extents,
                                             const ReadOptions& o, std::string name) {
  const std::string how = "polled (" + poll_mode(o.poll) + ")";
  return std::make_unique<LbaRunBackend<UnvmeReader, backends::UnvmeTarget>>(
      std::move(dev), std::move(extents), o, std::move(name), "our NVMe driver", how);
}

}  // namespace aisio::io
