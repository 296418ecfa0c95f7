#include "io/tcp_path.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/error.hpp"
#include "extents/translate.hpp"
#include "io/pipeline.hpp"
#include "io/util.hpp"

namespace aisio::io {

namespace {

class TcpReader final : public PipelineReader {
 public:
  TcpReader(const backends::TcpTarget& dev, std::shared_ptr<ExtentSource> src, const ReadOptions& o)
      : PipelineReader(o.qd, o.io_size), dev_(dev), src_(std::move(src)), lba_(dev.lba_size) {
    const uint32_t depth = std::min<uint32_t>(std::max<uint32_t>(qd_ * 4, 32) + 1, dev_.max_queue_entries);
    qp_ = dev_.make_queue_pair({.depth = depth, .max_transfer = dev_.max_command_bytes()});
    topt_.lba_size = lba_;
    topt_.device_offset = src_->device_offset();
    topt_.max_nlb = uint32_t(std::max<size_t>(qp_->max_transfer() / lba_, 1));
    for (auto& s : slots_) {
      bufs_.emplace_back(io_size_ + lba_);
      s.buf = bufs_.back().data();
    }
    bounce_.resize(size_t(topt_.max_nlb) * lba_);
  }

 protected:
  void open_file(PipeFile& f) override {
    try {
      f.rf = src_->resolve(f.task->rel);
      f.size = f.rf.size;
    } catch (const std::exception& e) {
      f.fail(fmt::format("resolve extents of {} ({}): {}", f.task->rel, src_->name(), e.what()));
    }
  }

  void issue(Chunk& s) override {
    topt_.file_size = s.file->size;
    try {
      s.runs = extents::translate(s.file->rf.extents, s.off, s.off + s.len, topt_);
    } catch (const std::exception& e) {
      s.error = fmt::format("{}: {}", s.file->task->rel, e.what());
      s.done = true;
      return;
    }
    s.pending = 1;  // held until every run is submitted
    for (const auto& r : s.runs) {
      if (r.zero_fill) continue;
      if (r.skip != 0 || (r.file_offset - s.off) % lba_ != 0) {  // not on an LBA boundary: bounce
        read_bounced(s, r);
        continue;
      }
      ++s.pending;
      ++st_.device_reads;
      st_.device_bytes += uint64_t(r.nlb) * lba_;
      uint8_t* dst = s.buf + (r.file_offset - s.off);
      while (!qp_->submit_io(nvme::nvm::READ, dev_.nsid, r.slba, r.nlb, dst, lba_, &on_done, &s)) {
        qp_->ring();
        qp_->poll();
      }
    }
    if (--s.pending == 0) s.done = true;
  }
  void flush() override { qp_->ring(); }
  void reap(bool) override {
    // A queue that is reconnecting keeps its commands (they go again once it is back);
    // only one that gave up (or has no recovery) ends the run.
    if (qp_->poll() == 0 && !qp_->connected() && !qp_->recovering())
      throw Error(Errc::io, fmt::format("{}: {}", dev_.describe, qp_->error() ? qp_->error()->what() : "connection lost"));
  }
  void finish(Chunk& s) override {
    for (const auto& r : s.runs) {
      if (!r.zero_fill) continue;
      std::memset(s.buf + (r.file_offset - s.off), 0, r.length);
      st_.zero_fill_bytes += r.length;
    }
  }

 private:
  static void on_done(void* arg, nvme::Completion c) {
    auto& s = *static_cast<Chunk*>(arg);
    if (!c.ok() && s.error.empty())
      s.error = fmt::format("{}: NVMe/TCP Read in chunk at file offset {}: {}", s.file->task->rel, s.off, c.describe());
    if (--s.pending == 0) s.done = true;
  }
  void read_bounced(Chunk& s, const extents::LbaRun& r) {
    ++st_.device_reads;
    ++st_.fallback_reads;
    st_.device_bytes += uint64_t(r.nlb) * lba_;
    auto c = qp_->execute(nvme::cmd::rw(nvme::nvm::READ, dev_.nsid, r.slba, r.nlb), bounce_.data(), r.nlb * lba_);
    if (!c.ok() && s.error.empty())
      s.error = fmt::format("{}: NVMe/TCP Read of {} blocks at LBA {}: {}", s.file->task->rel, r.nlb, r.slba, c.describe());
    else
      std::memcpy(s.buf + (r.file_offset - s.off), bounce_.data() + r.skip, r.length);
  }

  backends::TcpTarget dev_;
  std::shared_ptr<ExtentSource> src_;
  uint32_t lba_;
  extents::TranslateOptions topt_;
  std::unique_ptr<tcp::QueuePair> qp_;
  std::deque<std::vector<uint8_t>> bufs_;
  std::vector<uint8_t> bounce_;
};

class TcpBackend final : public FileBackend {
 public:
  TcpBackend(backends::TcpTarget dev, std::shared_ptr<ExtentSource> src, const ReadOptions& o, std::string name)
      : dev_(std::move(dev)), src_(std::move(src)), o_(o), name_(std::move(name)) {
    check_io_size(o_.io_size);
  }
  std::string name() const override { return name_; }
  std::string describe() const override {
    return fmt::format("our NVMe/TCP initiator on {} (nsid {}, {} B LBAs), extents by {}; {} chunks of {} B in "
                       "flight per thread, one TCP connection per thread, polled; data in host memory",
                       dev_.describe, dev_.nsid, dev_.lba_size, src_->describe(), o_.qd, o_.io_size);
  }
  std::unique_ptr<FileReader> make_reader(uint32_t) override { return std::make_unique<TcpReader>(dev_, src_, o_); }

 private:
  backends::TcpTarget dev_;
  std::shared_ptr<ExtentSource> src_;
  ReadOptions o_;
  std::string name_;
};

}  // namespace

std::unique_ptr<FileBackend> make_tcp_path(backends::TcpTarget dev, std::shared_ptr<ExtentSource> extents,
                                           const ReadOptions& o, std::string name) {
  return std::make_unique<TcpBackend>(std::move(dev), std::move(extents), o, std::move(name));
}

TcpBlockReader::TcpBlockReader(backends::TcpTarget dev, uint64_t offset) : dev_(std::move(dev)), offset_(offset) {
  if (offset_ > dev_.ns_bytes)
    throw Error(Errc::invalid_argument, fmt::format("offset {} is past the end of namespace {} ({} bytes)", offset_,
                                                    dev_.nsid, dev_.ns_bytes));
  size_ = dev_.ns_bytes - offset_;
  qp_ = dev_.make_queue_pair({.depth = 4, .max_transfer = dev_.max_command_bytes()});
  const size_t chunk = std::min<size_t>(qp_->max_transfer(), 1u << 20) / dev_.lba_size * dev_.lba_size;
  bounce_.resize(chunk);
}

void TcpBlockReader::read(uint64_t byte_offset, void* buf, size_t len) {
  if (byte_offset > size_ || len > size_ - byte_offset)
    throw Error(Errc::io, fmt::format("read of {} bytes at offset {} is past the end of namespace {} on {}", len,
                                      byte_offset, dev_.nsid, dev_.describe));
  std::lock_guard lk(mu_);
  const uint32_t lba = dev_.lba_size;
  auto* out = static_cast<uint8_t*>(buf);
  uint64_t pos = offset_ + byte_offset;
  while (len > 0) {
    const uint64_t slba = pos / lba;
    const size_t skip = size_t(pos % lba);
    const size_t got = std::min(len, bounce_.size() - skip);  // the bounce buffer is whole LBAs
    const uint32_t nlb = uint32_t((skip + got + lba - 1) / lba);
    auto c = qp_->execute(nvme::cmd::rw(nvme::nvm::READ, dev_.nsid, slba, nlb), bounce_.data(), nlb * lba);
    if (!c.ok())
      throw Error(Errc::io, fmt::format("NVMe/TCP Read of {} blocks at LBA {} on {}: {}", nlb, slba, dev_.describe,
                                        c.describe()));
    std::memcpy(out, bounce_.data() + skip, got);
    out += got, pos += got, len -= got;
  }
}

}  // namespace aisio::io
