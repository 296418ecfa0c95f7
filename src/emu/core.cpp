#include "emu/core.hpp"

#include <chrono>
#include <thread>

namespace aisio::emu {

Core::Core(EmuConfig c)
    : cfg((c.validate(), std::move(c))),
      regs(cfg),
      dma(std::make_shared<DmaSpace>()),
      faults(
          [this] {
            raise_fatal("injected by FaultInjector::fatal()");
            wait_halted();
          },
          [this] { wait_halted(); }),
      pacer(cfg.device_model) {
  for (size_t i = 0; i < cfg.namespaces.size(); ++i)
    namespaces.push_back(std::make_unique<Namespace>(uint32_t(i + 1), cfg.namespaces[i]));
}

void Core::raise_fatal(const std::string& why) {
  {
    std::lock_guard lk(mu_);
    if (fatal_reason_.empty()) fatal_reason_ = why;
  }
  fatal.store(true, std::memory_order_release);
}

std::string Core::fatal_reason() const {
  std::lock_guard lk(mu_);
  return fatal_reason_;
}

void Core::wait_halted() {
  uint64_t g = halt_gen_.fetch_add(1, std::memory_order_acq_rel) + 1;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (auto& m : marks_)
    while (m.alive.load(std::memory_order_acquire) && m.seen.load(std::memory_order_acquire) < g && halted() &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(20));
}

void Core::clear_fatal() {
  std::lock_guard lk(mu_);
  fatal_reason_.clear();
  fatal.store(false, std::memory_order_release);
}

void Core::doorbell_error(uint16_t qid, uint8_t info) {
  invalid_doorbells.fetch_add(1, std::memory_order_relaxed);
  errors.record(qid, 0xFFFF, nvme::Status{});
  events.raise(nvme::aer::TYPE_ERROR, info, nvme::log_page::ERROR_INFO);
}

}  // namespace aisio::emu
