#include "emu/nvm.hpp"

#include <sys/mman.h>

#include <cstring>

namespace aisio::emu {

namespace sc = nvme::sc;
using nvme::Sqe;
using nvme::Status;

namespace {

Outcome read_write(IoContext& c, Namespace& ns, const Sqe& cmd) {
  uint64_t slba = nvme::sqe_slba(cmd);
  uint32_t nlb = nvme::sqe_nlb(cmd);
  size_t len = size_t(nlb) << ns.lba_shift();
  uint64_t mdts = c.core.mdts_bytes();
  if (mdts && len > mdts) return fail(sc::INVALID_FIELD);
  if (!ns.in_range(slba, nlb)) return fail(sc::LBA_OUT_OF_RANGE);
  Status st = map_data(*c.core.dma, cmd, len, c.core.page_shift.load(std::memory_order_relaxed), c.core.cfg.sgl,
                       c.segs);
  if (!st.ok()) return Outcome{0, st};
  c.bytes = len;
  uint8_t* media = ns.data();
  size_t off = size_t(slba) << ns.lba_shift();
  switch (cmd.opc) {
    case nvme::nvm::READ:
      ThreadCounters::bump(c.counters.read_commands);
      ThreadCounters::bump(c.counters.bytes_read, len);
      if (media) copy_to_host(c.segs, media + off, len);  // null backing moves no data
      break;
    case nvme::nvm::WRITE:
      ThreadCounters::bump(c.counters.write_commands);
      ThreadCounters::bump(c.counters.bytes_written, len);
      if (media) {
        copy_from_host(c.segs, media + off, len);
        // Force Unit Access on a file: the data must be durable before the completion.
        if ((cmd.cdw12 & nvme::nvm::RW_FUA) && ns.backing() == Backing::file) {
          size_t a = off & ~size_t(4095);
          msync(media + a, off + len - a, MS_SYNC);
        }
      }
      break;
    case nvme::nvm::COMPARE:
      ThreadCounters::bump(c.counters.read_commands);
      ThreadCounters::bump(c.counters.bytes_read, len);
      if (media && !equal_host(c.segs, media + off))
        return Outcome{0, Status::make(nvme::sct::MEDIA, sc::COMPARE_FAILURE, true)};
      break;
  }
  return Outcome{};
}

Outcome flush(IoContext&, Namespace& ns, const Sqe&) {
  ns.flush();
  return Outcome{};
}

Outcome write_zeroes(IoContext& c, Namespace& ns, const Sqe& cmd) {
  uint64_t slba = nvme::sqe_slba(cmd);
  uint32_t nlb = nvme::sqe_nlb(cmd);
  if (!ns.in_range(slba, nlb)) return fail(sc::LBA_OUT_OF_RANGE);
  // With or without DEAC the blocks read back as zeros; deallocating is how we zero.
  ns.deallocate(slba, nlb);
  ThreadCounters::bump(c.counters.write_commands);
  return Outcome{};
}

Outcome dataset_management(IoContext& c, Namespace& ns, const Sqe& cmd) {
  uint32_t nr = (cmd.cdw10 & 0xFFu) + 1;
  nvme::DsmRange ranges[256];
  size_t len = nr * sizeof(nvme::DsmRange);
  Status st = map_data(*c.core.dma, cmd, len, c.core.page_shift.load(std::memory_order_relaxed), c.core.cfg.sgl,
                       c.segs);
  if (!st.ok()) return Outcome{0, st};
  copy_from_host(c.segs, reinterpret_cast<uint8_t*>(ranges), len);
  c.bytes = len;
  if (!(cmd.cdw11 & nvme::nvm::DSM_AD)) return Outcome{};  // attributes are hints only
  for (uint32_t i = 0; i < nr; ++i)  // validate all before changing anything
    if (ranges[i].nlb && !ns.in_range(ranges[i].slba, ranges[i].nlb)) return fail(sc::LBA_OUT_OF_RANGE);
  for (uint32_t i = 0; i < nr; ++i) ns.deallocate(ranges[i].slba, ranges[i].nlb);
  return Outcome{};
}

}  // namespace

Outcome execute_nvm(IoContext& c, const Sqe& cmd) {
  c.bytes = 0;
  ThreadCounters::bump(c.counters.commands);
  if (nvme::fuse(cmd.flags)) return fail(sc::INVALID_FIELD);  // fused operations not supported
  Outcome (*run)(IoContext&, Namespace&, const Sqe&) = nullptr;
  switch (cmd.opc) {
    case nvme::nvm::READ:
    case nvme::nvm::WRITE:
    case nvme::nvm::COMPARE: run = read_write; break;
    case nvme::nvm::FLUSH: run = flush; break;
    case nvme::nvm::WRITE_ZEROES: run = write_zeroes; break;
    case nvme::nvm::DATASET_MANAGEMENT: run = dataset_management; break;
    default: return fail(sc::INVALID_OPCODE);
  }
  if (cmd.opc == nvme::nvm::FLUSH && cmd.nsid == 0xFFFFFFFFu) {  // broadcast (Identify VWC bits 2:1 = 11b)
    for (auto& ns : c.core.namespaces) ns->flush();
    return Outcome{};
  }
  Namespace* ns = c.core.ns(cmd.nsid);
  if (!ns) return fail(sc::INVALID_NAMESPACE_OR_FORMAT);
  return run(c, *ns, cmd);
}

}  // namespace aisio::emu
