// State shared by the controller thread, the admin command set and the I/O workers
// (internal to emu/).
#pragma once
#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "emu/config.hpp"
#include "emu/device_model.hpp"
#include "emu/dma_space.hpp"
#include "emu/events.hpp"
#include "emu/faults.hpp"
#include "emu/namespace.hpp"
#include "emu/outcome.hpp"
#include "emu/register_file.hpp"
#include "emu/stats.hpp"
#include "spec/commands.hpp"

namespace aisio::emu {

struct Core {
  explicit Core(EmuConfig c);

  EmuConfig cfg;
  RegisterFile regs;
  std::shared_ptr<DmaSpace> dma;
  std::vector<std::unique_ptr<Namespace>> namespaces;  // index nsid - 1; immutable after construction
  ErrorLog errors;
  AsyncEvents events;
  FaultInjector faults;
  Pacer pacer;  // device model, shared by the I/O workers

  std::atomic<bool> fatal{false};        // CSTS.CFS: nothing is processed until CC.EN is cleared
  std::atomic<bool> shut_down{false};    // CC.SHN handled: no fetching until a reset
  std::atomic<uint32_t> page_shift{12};  // host memory page size from CC.MPS, set before CSTS.RDY
  std::atomic<uint64_t> invalid_doorbells{0};

  bool halted() const {
    return fatal.load(std::memory_order_acquire) || shut_down.load(std::memory_order_acquire) || faults.frozen();
  }

  // Device threads (0 = controller thread, 1 + i = worker i) check this at the top of
  // each pass: true means process nothing now. It also acknowledges the halt, so that
  // wait_halted() can tell when no thread is still inside a pass that began earlier.
  static constexpr unsigned MAX_THREADS = 65;
  bool check_halted(unsigned thread) {
    uint64_t g = halt_gen_.load(std::memory_order_acquire);
    if (!halted()) return false;
    marks_[thread].seen.store(g, std::memory_order_release);
    return true;
  }
  void thread_alive(unsigned thread, bool alive) { marks_[thread].alive.store(alive, std::memory_order_release); }
  // After fatal/freeze was set from outside: returns once every running device thread
  // has seen it (bounded wait), so a test's next doorbell write is surely not served.
  void wait_halted();
  Namespace* ns(uint32_t nsid) const {
    return nsid >= 1 && nsid <= namespaces.size() ? namespaces[nsid - 1].get() : nullptr;
  }
  uint64_t mdts_bytes() const { return cfg.mdts ? uint64_t(4096) << cfg.mdts : 0; }

  // Controller fatal status; `why` is kept for diagnostics (first reason wins).
  void raise_fatal(const std::string& why);
  std::string fatal_reason() const;
  void clear_fatal();  // controller reset
  // A doorbell write the controller ignored: Error Information log entry + async event.
  void doorbell_error(uint16_t qid, uint8_t info);

  // One fetched command of queue `qid`: `exec()` runs it unless an armed fault rule fails
  // it instead; a failure is counted and logged (Error Information). `drop` tells the
  // caller that a rule wants its completion dropped (counted here).
  template <class Exec>
  Outcome run_command(ThreadCounters& n, uint16_t qid, const nvme::Sqe& cmd, bool& drop, Exec exec) {
    auto action = FaultInjector::Action::none;
    Outcome o;
    if (faults.armed()) action = faults.check(qid, cmd.opc, o.status);
    if (action == FaultInjector::Action::fail) {
      ThreadCounters::bump(n.commands);
      ThreadCounters::bump(n.injected);
    } else {
      o = exec();
    }
    if (!o.status.ok()) {
      ThreadCounters::bump(n.errors);
      errors.record(qid, cmd.cid, o.status, cmd.nsid);
    }
    drop = action == FaultInjector::Action::drop;
    if (drop) ThreadCounters::bump(n.dropped);
    return o;
  }

 private:
  struct alignas(64) ThreadMark {
    std::atomic<uint64_t> seen{0};
    std::atomic<bool> alive{false};
  };
  mutable std::mutex mu_;
  std::string fatal_reason_;
  std::atomic<uint64_t> halt_gen_{0};
  std::array<ThreadMark, MAX_THREADS> marks_;
};

}  // namespace aisio::emu
