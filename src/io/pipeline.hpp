// The file readers' common loop (internal to src/io): files are cut into io_size
// chunks, up to qd chunks are in flight in a ring, and chunks are delivered to the sink
// in issue order, so every file's bytes arrive in file order however the reads
// complete. The kernel readers (psync, io_uring: kernel_engine.cpp) and the LBA-run
// readers (unvme, NVMe/TCP: lba_reader.hpp) supply open/issue/flush/reap over their queue.
#pragma once
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <vector>

#include "extents/translate.hpp"
#include "io/engine.hpp"
#include "io/extent_source.hpp"

namespace aisio::io {

struct PipeFile {
  const FileTask* task = nullptr;
  uint64_t size = 0;
  uint64_t next_off = 0;     // next byte to issue
  uint64_t end = 0;          // one past the last byte wanted (task range clipped at size)
  uint32_t outstanding = 0;  // chunks issued and not yet delivered
  bool failed = false;
  bool opened = false;       // open_file() succeeded
  std::string error;
  int fd = -1;               // io_uring
  ResolvedFile rf;           // unvme
  void fail(std::string why) {
    if (!failed) error = std::move(why);
    failed = true;
  }
};

struct Chunk {
  PipeFile* file = nullptr;
  uint64_t off = 0;          // file offset of the chunk
  size_t len = 0;            // file bytes in the chunk
  bool done = false;
  uint32_t pending = 0;      // device commands outstanding (unvme)
  int64_t res = 0;           // io_uring: the CQE result
  std::string error;         // set by the reader when the chunk failed
  uint8_t* buf = nullptr;    // where the chunk's bytes land (file byte `off` at buf[0])
  std::vector<extents::LbaRun> runs;  // unvme
};

class PipelineReader : public FileReader {
 public:
  PipelineReader(uint32_t qd, size_t io_size) : qd_(qd ? qd : 1), io_size_(io_size), slots_(qd_) {}
  void read(std::span<const FileTask> files, FileSink& sink) override;
  const ReadStats& stats() const override { return st_; }

 protected:
  // Sets f.size (or fails f); resources kept in f are released by close_file().
  virtual void open_file(PipeFile& f) = 0;
  virtual void close_file(PipeFile&) {}
  // Starts the read of s (s.file, s.off, s.len, s.buf set); may complete it at once
  // (s.done = true). Never refuses: a reader out of device slots reaps until it has one.
  virtual void issue(Chunk& s) = 0;
  virtual void flush() = 0;                // doorbell / io_uring_submit
  virtual void reap(bool may_block) = 0;   // marks finished slots done
  // Before delivery: fix-ups (zero fill, short reads). Sets s.error on failure.
  virtual void finish(Chunk&) {}

  uint32_t qd_;
  size_t io_size_;
  bool count_unopened_ = true;  // stats().files counts files that could not be opened
  std::vector<Chunk> slots_;
  ReadStats st_;

 private:
  void end_file(PipeFile& f, FileSink& sink);
};

}  // namespace aisio::io
