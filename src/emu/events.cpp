#include "emu/events.hpp"

#include <algorithm>

namespace aisio::emu {

void ErrorLog::record(uint16_t sqid, uint16_t cid, nvme::Status status, uint32_t nsid, uint64_t lba) {
  std::lock_guard lk(mu_);
  nvme::ErrorLogEntry e{};
  e.error_count = ++count_;  // unique and non-zero per the spec
  e.sqid = sqid;
  e.cid = cid;
  e.status = uint16_t(status.field << 1);
  e.param_error_location = 0xFFFF;  // not tracked
  e.lba = lba;
  e.nsid = nsid;
  ring_[(count_ - 1) % ENTRIES] = e;
}

void ErrorLog::snapshot(nvme::ErrorLogEntry* out) const {
  std::lock_guard lk(mu_);
  unsigned n = unsigned(std::min<uint64_t>(count_, ENTRIES));
  for (unsigned i = 0; i < ENTRIES; ++i) out[i] = i < n ? ring_[(count_ - 1 - i) % ENTRIES] : nvme::ErrorLogEntry{};
}

uint64_t ErrorLog::count() const {
  std::lock_guard lk(mu_);
  return count_;
}

void AsyncEvents::raise(uint8_t type, uint8_t info, uint8_t lid) {
  std::lock_guard lk(mu_);
  for (const Event& e : queue_)
    if (e.type == type && e.info == info) return;  // already waiting to be reported
  if (queue_.size() < 64) queue_.push_back({type, info, lid});
  update_pending();
}

std::optional<uint32_t> AsyncEvents::take() {
  std::lock_guard lk(mu_);
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (masked_ & (1u << it->type)) continue;
    uint32_t dw0 = nvme::aer::make_dw0(it->type, it->info, it->lid);
    masked_ |= uint8_t(1u << it->type);
    masked_lid_[it->type] = it->lid;
    queue_.erase(it);
    update_pending();
    return dw0;
  }
  return std::nullopt;
}

void AsyncEvents::log_page_read(uint8_t lid) {
  std::lock_guard lk(mu_);
  for (unsigned t = 0; t < 8; ++t)
    if ((masked_ & (1u << t)) && masked_lid_[t] == lid) masked_ &= uint8_t(~(1u << t));
  update_pending();
}

void AsyncEvents::reset() {
  std::lock_guard lk(mu_);
  queue_.clear();
  masked_ = 0;
  update_pending();
}

void AsyncEvents::update_pending() {
  bool any = std::any_of(queue_.begin(), queue_.end(), [&](const Event& e) { return !(masked_ & (1u << e.type)); });
  pending_.store(any, std::memory_order_release);
}

}  // namespace aisio::emu
