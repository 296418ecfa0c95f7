// Fault injection for tests: failed statuses, lost completions, controller fatal
// status and a frozen (unresponsive) controller. Thread-safe; the device's hot path
// costs one relaxed load while nothing is armed.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "spec/status.hpp"

namespace aisio::emu {

// Which commands a rule applies to; an empty field matches anything. qid 0 is the
// admin queue, so (opcode, qid) tells an admin opcode from the same NVM opcode.
struct FaultMatch {
  std::optional<uint8_t> opcode;
  std::optional<uint16_t> qid;
};

class FaultInjector {
 public:
  // The hooks make fatal()/freeze() take effect: they return once the device threads
  // have stopped (no command fetched after they return is processed).
  FaultInjector(std::function<void()> on_fatal, std::function<void()> on_freeze)
      : on_fatal_(std::move(on_fatal)), on_freeze_(std::move(on_freeze)) {}

  // The next `count` matching commands are not executed and complete with `status`.
  void fail_next(unsigned count, nvme::Status status, FaultMatch match = {}) {
    add({Action::fail, count, status, match});
  }
  // The next `count` matching commands execute but post no completion entry.
  void drop_completions(unsigned count, FaultMatch match = {}) { add({Action::drop, count, {}, match}); }
  // Set CSTS.CFS: the controller stops processing until the host clears CC.EN.
  void fatal() { on_fatal_(); }
  // Stop responding entirely (no register changes, no completions) until resume().
  void freeze() {
    frozen_.store(true, std::memory_order_release);
    on_freeze_();
  }
  void resume() { frozen_.store(false, std::memory_order_release); }
  bool frozen() const { return frozen_.load(std::memory_order_acquire); }

  // Device side: what to do with a command about to execute.
  enum class Action { none, fail, drop };
  bool armed() const { return armed_.load(std::memory_order_relaxed) != 0; }
  Action check(uint16_t qid, uint8_t opcode, nvme::Status& status);

 private:
  struct Rule {
    Action action;
    unsigned remaining;
    nvme::Status status;
    FaultMatch match;
  };
  void add(Rule r);
  std::function<void()> on_fatal_, on_freeze_;
  std::atomic<bool> frozen_{false};
  std::atomic<unsigned> armed_{0};  // number of rules with remaining > 0
  std::mutex mu_;
  std::vector<Rule> rules_;
};

}  // namespace aisio::emu
