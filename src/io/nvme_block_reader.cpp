#include "io/nvme_block_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "common/error.hpp"
#include "io/hybrid_poll.hpp"
#include "io/util.hpp"

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

NvmeBlockReader::NvmeBlockReader(backends::UnvmeTarget dev, uint64_t offset, size_t bounce_bytes)
    : dev_(std::move(dev)), offset_(offset) {
  const uint32_t lba = dev_.lba_size;
  if (offset_ > dev_.ns_bytes)
    throw Error(Errc::invalid_argument,
                fmt::format("offset {} is past the end of namespace {} ({} bytes)", offset_, dev_.nsid, dev_.ns_bytes));
  size_ = dev_.ns_bytes - offset_;
  qp_ = dev_.make_queue_pair({.depth = 8});
  size_t chunk = std::min(bounce_bytes, qp_->max_transfer());
  chunk = chunk / lba * lba;
  // Data per command plus one LBA for an unaligned start: one command never exceeds MDTS.
  chunk = chunk > lba ? chunk - lba : lba;
  bounce_ = dev_.dma->alloc(chunk + lba);
}

NvmeBlockReader::~NvmeBlockReader() {
  qp_.reset();
  bounce_.reset();
}

uint64_t NvmeBlockReader::commands() const {
  std::lock_guard lk(mu_);
  return commands_;
}

void NvmeBlockReader::read(uint64_t byte_offset, void* buf, size_t len) {
  if (byte_offset > size_ || len > size_ - byte_offset)
    throw Error(Errc::io, fmt::format("read of {} bytes at offset {} is past the end of namespace {} on {} ({} bytes)",
                                      len, byte_offset, dev_.nsid, dev_.describe, size_));
  std::lock_guard lk(mu_);
  const size_t chunk = bounce_.size() - dev_.lba_size;
  read_via_bounce(offset_ + byte_offset, buf, len, dev_.lba_size, chunk, bounce_.data(),
                  [&](uint64_t slba, uint32_t nlb) {
                    // One command (chunk <= MDTS) on a queue pair of our own: a slot is always free.
                    ReadDone d;
                    if (!qp_->submit_io(nvme::nvm::READ, dev_.nsid, slba, nlb, bounce_, 0, &ReadDone::cb, &d))
                      throw Error(Errc::no_memory, "NvmeBlockReader: no free command slot on its own queue pair");
                    qp_->ring();
                    // A fresh HybridPoll has no estimate: it spins through a short wait (the usual
                    // metadata read) and sleeps through a long one (a cold image file, a busy core)
                    // instead of spinning a whole core on it; the XFS decoder runs in the reading
                    // thread.
                    HybridPoll wait;
                    while (!d.done)
                      if (qp_->poll() == 0) wait.idle();
                    if (!d.c.ok())
                      throw Error(Errc::io, fmt::format("NVMe Read of {} blocks at LBA {} (namespace {} on {}): {}",
                                                        nlb, slba, dev_.nsid, dev_.describe, d.c.describe()));
                    ++commands_;
                  });
}

}  // namespace aisio::io
