// SoftController: an NVMe controller in software. The host talks to it exactly as to a
// PCIe NVMe device: registers and doorbells in bar0(), queues and data in DMA memory
// from dma() (or any other memory mapped into its DmaSpace).
//
//   emu::SoftController ctrl(cfg);
//   ctrl.start();
//   auto bar = ctrl.bar0();   // aisio::MmioWindow, describe() == "emu:local"
//   auto heap = ctrl.dma();   // aisio::DmaHeap the controller can reach
//
// Threads: one controller thread (CC/CSTS state machine, admin queue, async events)
// and cfg.workers I/O threads. See config.hpp for the idle policy.
#pragma once
#include <memory>
#include <string>

#include "emu/config.hpp"
#include "emu/dma_space.hpp"
#include "emu/faults.hpp"
#include "emu/stats.hpp"
#include "memory/dma.hpp"
#include "pcie/mmio.hpp"

namespace aisio::emu {

class SoftController {
 public:
  explicit SoftController(EmuConfig cfg);  // throws aisio::Error on a bad config
  ~SoftController();
  SoftController(const SoftController&) = delete;
  SoftController& operator=(const SoftController&) = delete;

  void start();
  void stop();  // idempotent; also done by the destructor

  // A window over the controller's own mapping of BAR0: the device threads poll these
  // very addresses (so pages remapped there, e.g. doorbell pages, are what they see).
  std::shared_ptr<MmioWindow> bar0(const std::string& describe = "emu:local");
  std::shared_ptr<DmaHeap> dma();  // one heap per controller, created on first use
  std::shared_ptr<DmaSpace> dma_space();
  FaultInjector& faults();
  EmuStats stats() const;
  const EmuConfig& config() const;
  // Why CSTS.CFS was set, or why the last CC.EN 0 -> 1 was refused; empty if neither.
  std::string last_error() const;

  // For the server: the BAR0 memfd and its size.
  int bar0_fd() const;
  size_t bar0_size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aisio::emu
