// Error Information log and Asynchronous Events: any device thread records errors and
// raises events; the admin thread reports events to outstanding Asynchronous Event
// Requests. Both are off the I/O fast path (errors only), so a mutex is fine.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "spec/commands.hpp"
#include "spec/status.hpp"

namespace aisio::emu {

class ErrorLog {
 public:
  static constexpr unsigned ENTRIES = 64;  // Identify Controller ELPE = ENTRIES - 1

  void record(uint16_t sqid, uint16_t cid, nvme::Status status, uint32_t nsid = 0, uint64_t lba = 0);
  // ENTRIES entries, newest first; slots never used are zero.
  void snapshot(nvme::ErrorLogEntry* out) const;
  uint64_t count() const;

 private:
  mutable std::mutex mu_;
  std::array<nvme::ErrorLogEntry, ENTRIES> ring_{};
  uint64_t count_ = 0;
};

class AsyncEvents {
 public:
  void raise(uint8_t type, uint8_t info, uint8_t lid);
  bool pending() const { return pending_.load(std::memory_order_acquire); }
  // The completion dword 0 of the next reportable event; its type is then masked
  // until the host reads the event's log page (Get Log Page with RAE cleared).
  std::optional<uint32_t> take();
  void log_page_read(uint8_t lid);
  void reset();

 private:
  struct Event {
    uint8_t type, info, lid;
  };
  void update_pending();
  mutable std::mutex mu_;
  std::vector<Event> queue_;
  uint8_t masked_ = 0;  // bit per event type
  std::array<uint8_t, 8> masked_lid_{};
  std::atomic<bool> pending_{false};
};

}  // namespace aisio::emu
