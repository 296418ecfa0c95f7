#include "io/nvme_block_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "common/error.hpp"
#include "io/hybrid_poll.hpp"

namespace aisio::io {

namespace {
struct ReadDone {
  bool done = false;
  nvme::Completion c;
  static void cb(void* arg, nvme::Completion c) {
    auto& d = *static_cast<ReadDone*>(arg);
    d.c = c;
    d.done = true;
  }
};
}  // namespace

NvmeBlockReader::NvmeBlockReader(std::shared_ptr<nvme::Controller> ctrl, uint32_t nsid, uint64_t offset,
                                 size_t bounce_bytes)
    : NvmeBlockReader(access_of(std::move(ctrl), nsid), offset, bounce_bytes) {}

NvmeBlockReader::NvmeBlockReader(NvmeAccess dev, uint64_t offset, size_t bounce_bytes)
    : dev_(std::move(dev)), nsid_(dev_.nsid), offset_(offset) {
  lba_ = dev_.lba_size;
  ns_bytes_ = dev_.ns_bytes;
  if (offset_ > ns_bytes_)
    throw Error(Errc::invalid_argument,
                fmt::format("offset {} is past the end of namespace {} ({} bytes)", offset_, nsid_, ns_bytes_));
  size_ = ns_bytes_ - offset_;
  qp_ = dev_.make_queue_pair({.depth = 8});
  size_t chunk = std::min(bounce_bytes, qp_->max_transfer());
  chunk = chunk / lba_ * lba_;
  // Data per command plus one LBA for an unaligned start: one command never exceeds MDTS.
  chunk = chunk > lba_ ? chunk - lba_ : lba_;
  bounce_ = dev_.dma->alloc(chunk + lba_);
}

NvmeBlockReader::~NvmeBlockReader() {
  qp_.reset();
  bounce_.reset();
}

NvmeReaderStats NvmeBlockReader::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

void NvmeBlockReader::read(uint64_t byte_offset, void* buf, size_t len) {
  if (byte_offset > size_ || len > size_ - byte_offset)
    throw Error(Errc::io, fmt::format("read of {} bytes at offset {} is past the end of namespace {} on {} ({} bytes)",
                                      len, byte_offset, nsid_, dev_.describe, size_));
  std::lock_guard lk(mu_);
  ++stats_.reads;
  auto* out = static_cast<uint8_t*>(buf);
  const size_t chunk = bounce_.size() - lba_;
  uint64_t pos = offset_ + byte_offset;
  size_t left = len;
  while (left > 0) {
    uint64_t slba = pos / lba_;
    size_t skip = size_t(pos % lba_);
    size_t take = std::min(left, chunk - skip);
    uint32_t nlb = uint32_t((skip + take + lba_ - 1) / lba_);
    // One command (chunk <= MDTS) on a queue pair of our own: a slot is always free.
    ReadDone d;
    if (!qp_->submit_io(nvme::nvm::READ, nsid_, slba, nlb, bounce_, 0, &ReadDone::cb, &d))
      throw Error(Errc::no_memory, "NvmeBlockReader: no free command slot on its own queue pair");
    qp_->ring();
    // A fresh HybridPoll has no estimate: it spins through a short wait (the usual
    // metadata read) and sleeps through a long one (a cold image file, a busy core)
    // instead of spinning a whole core on it; the XFS decoder runs in the reading thread.
    HybridPoll wait;
    while (!d.done)
      if (qp_->poll() == 0) wait.idle();
    const auto c = d.c;
    if (!c.ok())
      throw Error(Errc::io, fmt::format("NVMe Read of {} blocks at LBA {} (namespace {} on {}): {}", nlb, slba,
                                        nsid_, dev_.describe, c.describe()));
    ++stats_.commands;
    stats_.bytes += uint64_t(nlb) * lba_;
    std::memcpy(out, bounce_.data() + skip, take);
    out += take;
    pos += take;
    left -= take;
  }
}

}  // namespace aisio::io
