// Counters of the software controller, as a snapshot.
#pragma once
#include <atomic>
#include <cstdint>

namespace aisio::emu {

struct EmuStats {
  uint64_t admin_commands = 0;
  uint64_t io_commands = 0;
  uint64_t read_commands = 0;   // Read and Compare
  uint64_t write_commands = 0;  // Write
  uint64_t bytes_read = 0;      // host <- media
  uint64_t bytes_written = 0;   // host -> media
  uint64_t errors = 0;          // completions with a non-success status
  uint64_t injected_failures = 0;
  uint64_t dropped_completions = 0;
  uint64_t invalid_doorbell_writes = 0;
  uint32_t io_submission_queues = 0;
  uint32_t io_completion_queues = 0;
  bool ready = false;
  bool fatal = false;
};

// One device thread's counters; only that thread writes, anyone reads.
struct alignas(64) ThreadCounters {
  std::atomic<uint64_t> commands{0}, read_commands{0}, write_commands{0}, bytes_read{0}, bytes_written{0},
      errors{0}, injected{0}, dropped{0};
  static void bump(std::atomic<uint64_t>& c, uint64_t v = 1) {
    c.store(c.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);  // single writer: no RMW
  }
  void add_to(EmuStats& s, bool admin) const {
    (admin ? s.admin_commands : s.io_commands) += commands.load(std::memory_order_relaxed);
    s.read_commands += read_commands.load(std::memory_order_relaxed);
    s.write_commands += write_commands.load(std::memory_order_relaxed);
    s.bytes_read += bytes_read.load(std::memory_order_relaxed);
    s.bytes_written += bytes_written.load(std::memory_order_relaxed);
    s.errors += errors.load(std::memory_order_relaxed);
    s.injected_failures += injected.load(std::memory_order_relaxed);
    s.dropped_completions += dropped.load(std::memory_order_relaxed);
  }
};

}  // namespace aisio::emu
