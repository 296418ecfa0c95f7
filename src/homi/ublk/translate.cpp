#include "homi/ublk/translate.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "spec/commands.hpp"

namespace aisio::homi::ublk {

namespace sct = nvme::sct;
namespace sc = nvme::sc;

int completion_errno(const nvme::Completion& c) {
  switch (c.host) {
    case nvme::HostStatus::none: break;
    case nvme::HostStatus::timeout: return -ETIMEDOUT;
    case nvme::HostStatus::aborted_reset:
    case nvme::HostStatus::controller_fatal:
    case nvme::HostStatus::transport: return -EIO;
  }
  if (c.status.ok()) return 0;
  const uint8_t t = c.status.sct(), code = c.status.sc();
  if (t == sct::GENERIC) {
    switch (code) {
      case sc::INVALID_OPCODE:
      case sc::INVALID_FIELD:
      case sc::INVALID_NAMESPACE_OR_FORMAT: return -EOPNOTSUPP;
      case sc::LBA_OUT_OF_RANGE: return -EREMOTEIO;
      case sc::CAPACITY_EXCEEDED: return -ENOSPC;
      case sc::RESERVATION_CONFLICT: return -EBADE;
      default: return -EIO;
    }
  }
  if (t == sct::COMMAND_SPECIFIC && code == sc::CONFLICTING_ATTRIBUTES) return -EOPNOTSUPP;
  if (t == sct::MEDIA) return -ENODATA;  // BLK_STS_MEDIUM: write fault, unrecovered read, ...
  return -EIO;
}

namespace {
constexpr uint64_t WZ_MAX_BLOCKS = 65536;  // Write Zeroes NLB is a 16-bit, 0-based field
}

Translator::Translator(nvme::QueuePair& qp, const NamespaceGeometry& ns, uint32_t tags, Done done, void* ctx)
    : qp_(qp), ns_(ns), done_(done), ctx_(ctx), tags_(tags) {
  rw_blocks_ = uint32_t(std::min<uint64_t>(qp.max_transfer() >> ns.lba_shift, WZ_MAX_BLOCKS));
  for (uint32_t i = 0; i < tags; ++i) {
    tags_[i].self = this;
    tags_[i].tag = uint16_t(i);
  }
  waiting_.reserve(tags);
}

void Translator::start(uint16_t tag, const IoDesc& d, const DmaBuffer& buf) {
  Tag& t = tags_[tag];
  t.buf = &buf;
  t.op = d.op();
  t.cdw12_flags = 0;
  t.outstanding = 0;
  t.error = 0;
  t.buf_off = 0;
  t.bytes = 0;
  t.active = true;
  t.waiting = false;
  ++busy_;
  if (failed_) return finish(t, -EIO);
  const uint32_t shift = ns_.lba_shift - 9;  // 512-byte sectors per block, as a shift
  const uint64_t mask = (uint64_t(1) << shift) - 1;
  if (t.op != IO_OP_FLUSH) {
    if ((d.start_sector & mask) || (d.nr_sectors & mask) || d.nr_sectors == 0) return finish(t, -EINVAL);
    t.next_lba = d.start_sector >> shift;
    t.blocks_left = d.nr_sectors >> shift;
    if (t.next_lba + t.blocks_left > ns_.nsze || t.next_lba + t.blocks_left < t.next_lba) return finish(t, -EREMOTEIO);
  } else {
    t.next_lba = 0;
    t.blocks_left = 1;  // one command
  }
  switch (t.op) {
    case IO_OP_READ:
    case IO_OP_WRITE: {
      uint64_t bytes = t.blocks_left << ns_.lba_shift;
      if (bytes > buf.size()) return finish(t, -EINVAL);  // larger than max_io_buf_bytes promised
      t.bytes = uint32_t(bytes);
      if (d.op_flags & IO_F_FUA) t.cdw12_flags = nvme::nvm::RW_FUA;
      (t.op == IO_OP_READ ? counters_.reads : counters_.writes).fetch_add(1, std::memory_order_relaxed);
      break;
    }
    case IO_OP_FLUSH: counters_.flushes.fetch_add(1, std::memory_order_relaxed); break;
    case IO_OP_DISCARD:
      if (!ns_.discard) return finish(t, -EOPNOTSUPP);
      counters_.discards.fetch_add(1, std::memory_order_relaxed);
      break;
    case IO_OP_WRITE_ZEROES:
      if (!ns_.write_zeroes) return finish(t, -EOPNOTSUPP);
      if (!(d.op_flags & IO_F_NOUNMAP)) t.cdw12_flags = nvme::nvm::WZ_DEAC;
      counters_.write_zeroes.fetch_add(1, std::memory_order_relaxed);
      break;
    default: return finish(t, -EOPNOTSUPP);
  }
  if (waiting_head_ < waiting_.size()) {  // keep arrival order behind earlier waiters
    t.waiting = true;
    waiting_.push_back(tag);
    return;
  }
  pump(t);
  if (t.blocks_left && !t.error) {
    t.waiting = true;
    waiting_.push_back(tag);
  }
}

void Translator::pump(Tag& t) {
  const uint32_t nsid = ns_.nsid;
  while (t.blocks_left && !t.error) {
    nvme::Sqe sqe;
    bool ok = false;
    uint64_t n = 0;
    switch (t.op) {
      case IO_OP_READ:
      case IO_OP_WRITE: {
        n = std::min<uint64_t>(t.blocks_left, rw_blocks_);
        sqe = nvme::cmd::rw(t.op == IO_OP_READ ? nvme::nvm::READ : nvme::nvm::WRITE, nsid, t.next_lba, uint32_t(n));
        sqe.cdw12 |= t.cdw12_flags;
        ok = qp_.submit(sqe, *t.buf, t.buf_off, size_t(n) << ns_.lba_shift, piece_done, &t);
        break;
      }
      case IO_OP_FLUSH:
        n = 1;
        ok = qp_.submit(nvme::cmd::flush(nsid), piece_done, &t);
        break;
      case IO_OP_DISCARD: {
        // One range in the tag's buffer: the kernel copies no data for a discard, so
        // the buffer is free to hold it (no allocation on the I/O path).
        n = t.blocks_left;
        nvme::DsmRange r{0, uint32_t(n), t.next_lba};
        std::memcpy(t.buf->data(), &r, sizeof r);
        ok = qp_.submit(nvme::cmd::dsm_deallocate(nsid, 1), *t.buf, 0, sizeof r, piece_done, &t);
        break;
      }
      case IO_OP_WRITE_ZEROES:
        n = std::min<uint64_t>(t.blocks_left, WZ_MAX_BLOCKS);
        sqe = nvme::cmd::write_zeroes(nsid, t.next_lba, uint32_t(n));
        sqe.cdw12 |= t.cdw12_flags;
        ok = qp_.submit(sqe, piece_done, &t);
        break;
    }
    if (!ok) return;  // no free slot: the rest goes out from poll()
    ++t.outstanding;
    counters_.nvme_commands.fetch_add(1, std::memory_order_relaxed);
    t.next_lba += n;
    t.blocks_left -= n;
    t.buf_off += size_t(n) << ns_.lba_shift;
  }
}

void Translator::piece_done(void* arg, nvme::Completion c) {
  Tag& t = *static_cast<Tag*>(arg);
  --t.outstanding;
  if (!c.ok() && !t.error) t.error = completion_errno(c);
  t.self->finish_if_done(t);
}

void Translator::finish_if_done(Tag& t) {
  if (t.outstanding) return;
  if (t.error) {
    if (t.waiting) return;  // poll() ends it when it reaches it in the waiting list
    return finish(t, t.error);
  }
  if (t.blocks_left) return;
  if (t.op == IO_OP_READ) counters_.bytes_read.fetch_add(t.bytes, std::memory_order_relaxed);
  if (t.op == IO_OP_WRITE) counters_.bytes_written.fetch_add(t.bytes, std::memory_order_relaxed);
  finish(t, int32_t(t.bytes));  // READ/WRITE: bytes; the others: 0
}

void Translator::finish(Tag& t, int32_t result) {
  t.active = false;
  --busy_;
  if (result < 0) counters_.errors.fetch_add(1, std::memory_order_relaxed);
  done_(ctx_, t.tag, result);
}

uint32_t Translator::poll() {
  uint32_t n = qp_.poll();
  while (waiting_head_ < waiting_.size()) {
    Tag& t = tags_[waiting_[waiting_head_]];
    pump(t);
    if (t.blocks_left && !t.error) break;  // still no slot: keep the order
    t.waiting = false;
    ++waiting_head_;
    if (t.error && !t.outstanding) finish(t, t.error);
  }
  if (waiting_head_ == waiting_.size()) {
    waiting_.clear();
    waiting_head_ = 0;
  }
  qp_.ring();
  return n;
}

}  // namespace aisio::homi::ublk
