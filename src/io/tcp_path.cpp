#include "io/tcp_path.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "common/error.hpp"
#include "io/lba_reader.hpp"
#include "io/util.hpp"

namespace aisio::io {

namespace {

class TcpReader final : public LbaRunReader {
 public:
  TcpReader(const backends::TcpTarget& dev, std::shared_ptr<ExtentSource> src, const ReadOptions& o)
      : LbaRunReader(o, std::move(src), dev.lba_size), dev_(dev) {
    qp_ = dev_.make_queue_pair({.depth = queue_depth(dev_.max_queue_entries), .max_transfer = dev_.max_command_bytes()});
    set_max_transfer(qp_->max_transfer());
    for (auto& s : slots_) {
      bufs_.emplace_back(io_size_ + lba_);
      s.buf = bufs_.back().data();
    }
    bounce_.resize(size_t(topt_.max_nlb) * lba_);
  }

 protected:
  void issue(Chunk& s) override {
    if (!translate(s)) return;
    s.pending = 1;  // held until every run is submitted
    for (const auto& r : s.runs) {
      if (r.zero_fill) continue;
      if (r.skip != 0 || (r.file_offset - s.off) % lba_ != 0) {  // not on an LBA boundary: bounce
        read_bounced(s, r);
        continue;
      }
      ++s.pending;
      count_read(r, false);
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

 private:
  static void on_done(void* arg, nvme::Completion c) { command_done(*static_cast<Chunk*>(arg), c, "NVMe/TCP Read"); }
  void read_bounced(Chunk& s, const extents::LbaRun& r) {
    count_read(r, true);
    auto c = qp_->execute(nvme::cmd::rw(nvme::nvm::READ, dev_.nsid, r.slba, r.nlb), bounce_.data(), r.nlb * lba_);
    if (!c.ok()) {  // the chunk fails; its buffer is not filled
      if (s.error.empty())
        s.error = fmt::format("{}: NVMe/TCP Read of {} blocks at LBA {}: {}", s.file->task->rel, r.nlb, r.slba,
                              c.describe());
      return;
    }
    std::memcpy(s.buf + (r.file_offset - s.off), bounce_.data() + r.skip, r.length);
  }

  backends::TcpTarget dev_;
  std::unique_ptr<tcp::QueuePair> qp_;
  std::deque<std::vector<uint8_t>> bufs_;
  std::vector<uint8_t> bounce_;
};

}  // namespace

std::unique_ptr<FileBackend> make_tcp_path(backends::TcpTarget dev, std::shared_ptr<ExtentSource> extents,
                                           const ReadOptions& o, std::string name) {
  return std::make_unique<LbaRunBackend<TcpReader, backends::TcpTarget>>(
      std::move(dev), std::move(extents), o, std::move(name), "our NVMe/TCP initiator",
      "one TCP connection per thread, polled; data in host memory");
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
  // The bounce buffer is whole LBAs.
  read_via_bounce(offset_ + byte_offset, buf, len, dev_.lba_size, bounce_.size(), bounce_.data(),
                  [&](uint64_t slba, uint32_t nlb) {
                    auto c = qp_->execute(nvme::cmd::rw(nvme::nvm::READ, dev_.nsid, slba, nlb), bounce_.data(),
                                          nlb * dev_.lba_size);
                    if (!c.ok())
                      throw Error(Errc::io, fmt::format("NVMe/TCP Read of {} blocks at LBA {} on {}: {}", nlb, slba,
                                                        dev_.describe, c.describe()));
                  });
}

}  // namespace aisio::io
