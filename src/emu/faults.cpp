#include "emu/faults.hpp"

#include <algorithm>

namespace aisio::emu {

void FaultInjector::add(Rule r) {
  if (r.remaining == 0) return;
  std::lock_guard lk(mu_);
  rules_.push_back(r);
  armed_.store(unsigned(rules_.size()), std::memory_order_release);
}

FaultInjector::Action FaultInjector::check(uint16_t qid, uint8_t opcode, nvme::Status& status) {
  std::lock_guard lk(mu_);
  for (auto it = rules_.begin(); it != rules_.end(); ++it) {
    if (it->match.opcode && *it->match.opcode != opcode) continue;
    if (it->match.qid && *it->match.qid != qid) continue;
    Action a = it->action;
    status = it->status;
    if (--it->remaining == 0) rules_.erase(it);
    armed_.store(unsigned(rules_.size()), std::memory_order_release);
    return a;
  }
  return Action::none;
}

}  // namespace aisio::emu
