// The readers that read files as NVMe commands on LBA runs (internal to src/io): the
// unvme reader (unvme_engine.cpp) and the same over NVMe/TCP (tcp_path.cpp). A file's
// extents come from an ExtentSource, each chunk is translated to LBA runs, and holes
// and unwritten extents are zero-filled in finish(); the subclass owns the queue and
// issues the runs.
#pragma once
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <string>

#include "extents/translate.hpp"
#include "io/extent_source.hpp"
#include "io/pipeline.hpp"
#include "io/util.hpp"
#include "nvme/completion.hpp"

namespace aisio::io {

class LbaRunReader : public PipelineReader {
 public:
  LbaRunReader(const ReadOptions& o, std::shared_ptr<ExtentSource> src, uint32_t lba_size);

  // One command of s ended; the last one finishes s. `what` names the command in the
  // error ("NVMe Read").
  static void command_done(Chunk& s, const nvme::Completion& c, const char* what) {
    if (!c.ok() && s.error.empty())
      s.error = fmt::format("{}: {} in chunk at file offset {}: {}", s.file->task->rel, what, s.off, c.describe());
    if (--s.pending == 0) s.done = true;
  }

 protected:
  // Queue entries for the ring: every chunk split over a few extents at once, within
  // the controller's limit. More runs than command slots just make issue() reap until
  // one frees up.
  uint32_t queue_depth(uint32_t max_queue_entries) const {
    return std::min<uint32_t>(std::max<uint32_t>(qd_ * 4, 32) + 1, max_queue_entries);
  }
  // The most blocks one command may read: runs are split at it.
  void set_max_transfer(size_t bytes) { topt_.max_nlb = uint32_t(std::max<size_t>(bytes / lba_, 1)); }

  void open_file(PipeFile& f) override;
  // s.runs for the chunk's byte range; false when that failed (s.error set, s done).
  bool translate(Chunk& s);
  void count_read(const extents::LbaRun& r, bool bounced) {
    ++st_.device_reads;
    st_.fallback_reads += bounced;
    st_.device_bytes += uint64_t(r.nlb) * lba_;
  }
  void finish(Chunk& s) override;

  std::shared_ptr<ExtentSource> src_;
  uint32_t lba_;
  extents::TranslateOptions topt_;
};

// The FileBackend of such a reader: one Reader(dev, extents, options) per thread.
// `driver` and `how` complete its description ("our NVMe driver", "polled (spin)").
template <class Reader, class Dev>
class LbaRunBackend final : public FileBackend {
 public:
  LbaRunBackend(Dev dev, std::shared_ptr<ExtentSource> src, const ReadOptions& o, std::string name,
                std::string driver, std::string how)
      : dev_(std::move(dev)), src_(std::move(src)), o_(o), name_(std::move(name)), driver_(std::move(driver)),
        how_(std::move(how)) {
    check_io_size(o_.io_size);
  }
  std::string name() const override { return name_; }
  std::string describe() const override {
    return fmt::format("{} on {} (nsid {}, {} B LBAs), extents by {}; {} chunks of {} B in flight per thread, {}",
                       driver_, dev_.describe, dev_.nsid, dev_.lba_size, src_->describe(), o_.qd, o_.io_size, how_);
  }
  std::unique_ptr<FileReader> make_reader(uint32_t) override { return std::make_unique<Reader>(dev_, src_, o_); }

 private:
  Dev dev_;
  std::shared_ptr<ExtentSource> src_;
  ReadOptions o_;
  std::string name_, driver_, how_;
};

}  // namespace aisio::io
