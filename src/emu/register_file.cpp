#include "emu/register_file.hpp"

namespace aisio::emu {

RegisterFile::RegisterFile(const EmuConfig& cfg) : dstrd_(cfg.dstrd) {
  uint32_t stride = 4u << dstrd_;
  size_t need = nvme::reg::DOORBELL_BASE + size_t(2) * (cfg.max_io_queues + 1u) * stride;
  size_t len = (need + 4095) & ~size_t(4095);
  max_qid_ = uint32_t((len - nvme::reg::DOORBELL_BASE) / (2 * stride) - 1);
  if (max_qid_ > 0xFFFF) max_qid_ = 0xFFFF;
  // CQR=1: queues must be physically contiguous (we do not walk PRP lists for queues).
  cap_ = nvme::Cap::make(cfg.mqes, true, cfg.ready_timeout, cfg.dstrd, nvme::CAP_CSS_NVM, 0, cfg.mpsmax);
  mem_ = std::make_shared<SharedMemory>(SharedMemory::create("aisio-emu-bar0", len));
  power_on();
}

void RegisterFile::power_on() {
  for (uint32_t off = 0; off < nvme::reg::DOORBELL_BASE; off += 4) store(off, 0);
  store(nvme::reg::CAP, uint32_t(cap_));
  store(nvme::reg::CAP + 4, uint32_t(cap_ >> 32));
  store(nvme::reg::VS, nvme::Version::make(2, 0, 0));
  clear_doorbells();
}

void RegisterFile::clear_doorbells() {
  // Only the doorbell words: with a large stride the rest of the BAR stays untouched (sparse).
  for (uint32_t qid = 0; qid <= max_qid_; ++qid) {
    store(sq_tail_offset(uint16_t(qid)), 0);
    store(cq_head_offset(uint16_t(qid)), 0);
  }
}

}  // namespace aisio::emu
