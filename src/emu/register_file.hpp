// BAR0 of the software controller: controller registers and doorbells in a memfd that
// the host side maps. There is no trap on access: the device polls this memory, so
// every device-side access here is an atomic with an explicit memory order.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "emu/config.hpp"
#include "emu/shm.hpp"
#include "pcie/mmio.hpp"
#include "spec/registers.hpp"

namespace aisio::emu {

class RegisterFile {
 public:
  explicit RegisterFile(const EmuConfig& cfg);

  uint8_t* base() const { return mem_->data(); }
  size_t size() const { return mem_->size(); }
  int fd() const { return mem_->fd(); }
  std::shared_ptr<SharedMemory> memory() const { return mem_; }
  uint32_t dstrd() const { return dstrd_; }
  uint64_t cap() const { return cap_; }
  // Highest queue id whose doorbells fit in the BAR.
  uint32_t max_qid() const { return max_qid_; }

  uint32_t sq_tail_offset(uint16_t qid) const { return nvme::sq_tail_doorbell(qid, dstrd_); }
  uint32_t cq_head_offset(uint16_t qid) const { return nvme::cq_head_doorbell(qid, dstrd_); }

  // acquire: whatever the host wrote before this register (SQEs before a tail doorbell,
  // ASQ/ACQ/AQA before CC.EN) is visible once the new value is seen.
  uint32_t load(uint32_t off) const { return ref(off).load(std::memory_order_acquire); }
  uint64_t load64(uint32_t off) const { return load(off) | (uint64_t(load(off + 4)) << 32); }
  // release: device state behind a status bit (e.g. the admin queue before CSTS.RDY).
  void store(uint32_t off, uint32_t v) const { ref(off).store(v, std::memory_order_release); }
  bool compare_exchange(uint32_t off, uint32_t expected, uint32_t v) const {
    return ref(off).compare_exchange_strong(expected, v, std::memory_order_acq_rel);
  }

  // Power-on values: CAP, VS, everything else (CC, CSTS, admin queue regs, doorbells) zero.
  void power_on();
  void clear_doorbells();

 private:
  std::atomic_ref<uint32_t> ref(uint32_t off) const {
    return std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(mem_->data() + off));
  }
  std::shared_ptr<SharedMemory> mem_;
  uint32_t dstrd_;
  uint32_t max_qid_;
  uint64_t cap_;
};

class DmaSpace;

// The host's view of BAR0: a plain mapping of the register memfd.
class EmuMmioWindow final : public MmioWindow {
 public:
  EmuMmioWindow(uint8_t* base, size_t size, std::string name, std::shared_ptr<void> keepalive,
                std::shared_ptr<DmaSpace> space = nullptr)
      : MmioWindow(base, size), name_(std::move(name)), keepalive_(std::move(keepalive)), space_(std::move(space)) {}
  std::string describe() const override { return name_; }
  // The controller's DMA space when it runs in this process (null when attached to a
  // server process): memory of our own, GPU memory included, can be mapped into it.
  const std::shared_ptr<DmaSpace>& dma_space() const { return space_; }

 private:
  std::string name_;
  std::shared_ptr<void> keepalive_;
  std::shared_ptr<DmaSpace> space_;
};

// The DMA space behind a register window of an in-process SoftController; null for
// any other window (a server process, a PCIe BAR).
inline std::shared_ptr<DmaSpace> dma_space_of(const MmioWindow& bar0) {
  auto* w = dynamic_cast<const EmuMmioWindow*>(&bar0);
  return w ? w->dma_space() : nullptr;
}

}  // namespace aisio::emu
