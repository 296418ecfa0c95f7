// Configuration of the software NVMe controller: identity, limits, namespaces,
// threading/idle policy and an optional performance model.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace aisio::emu {

enum class Backing {
  ram,   // anonymous MAP_NORESERVE memory: sparse, only written pages cost RAM
  file,  // a sparse file mapped MAP_SHARED; deallocation punches holes
  null,  // stores nothing: writes are discarded, reads move no data (benchmarks)
};

struct NamespaceConfig {
  uint64_t size_bytes = 1ull << 30;  // rounded down to a whole number of LBAs
  uint32_t lba_size = 512;           // 512 or 4096
  Backing backing = Backing::ram;
  std::string path;                  // Backing::file only; created if missing
};

// Optional throughput/latency model so the emulator can stand in for a real drive.
// Zero disables a limit. Two device-wide token buckets (commands, bytes) decide when a
// command has been served; its completion is held until then + latency_us. Only NVM
// I/O commands are modelled; admin commands complete at once.
struct DeviceModel {
  double iops = 0;          // commands per second
  double bandwidth = 0;     // bytes per second
  uint32_t latency_us = 0;  // fixed service latency added to every I/O command
  bool enabled() const { return iops > 0 || bandwidth > 0 || latency_us > 0; }
};

// How device threads wait when there is nothing to do. A thread that just did work
// spins (checking doorbells) for spin_us, then sleeps sleep_min_us, doubling up to
// sleep_max_us. So a busy device reacts in well under a microsecond, while an idle one
// costs a wakeup every sleep_max_us and does not starve a 2-core machine. The first
// command after a long idle period waits at most sleep_max_us (plus timer slack).
struct IdlePolicy {
  uint32_t spin_us = 50;
  uint32_t sleep_min_us = 10;
  uint32_t sleep_max_us = 500;
};

// The controller as an SR-IOV primary controller with `count` secondary controllers
// (Identify CNS 14h/15h, Virtualization Management); count 0: not a primary controller.
// Secondary controllers exist only as resource bookkeeping here (there are no virtual
// functions behind them), which is what homid's PF management needs to be tested.
struct SecondaryControllers {
  uint16_t count = 0;            // at most 127 (one Secondary Controller List page)
  uint32_t vq_flexible = 0;      // VQFRT: VQ flexible resources in total
  uint32_t vi_flexible = 0;      // VIFRT
  uint16_t vq_max = 0;           // VQFRSM: most VQ resources per secondary (0: vq_flexible)
  uint16_t vi_max = 0;           // VIFRSM (0: vi_flexible)
  uint16_t vq_granularity = 1;   // VQGRAN
  uint16_t vi_granularity = 1;   // VIGRAN
  uint16_t vq_private = 2;       // VQPRT: the primary's own queues (admin + one I/O)
  uint16_t vi_private = 1;       // VIPRT
};

struct EmuConfig {
  std::string serial = "AISIOEMU0001";
  std::string model = "aisio software NVMe controller";
  std::string firmware = "0.1";
  uint16_t mqes = 1023;          // CAP.MQES, 0-based: I/O queues hold at most mqes + 1 entries
  uint8_t mdts = 5;              // Identify MDTS: 2^mdts units of 4 KiB (CAP.MPSMIN); 0 = unlimited
  uint8_t dstrd = 0;             // CAP.DSTRD: doorbell stride 4 << dstrd bytes (10: a page per doorbell)
  uint8_t mpsmax = 4;            // CAP.MPSMAX: largest host memory page 2^(12 + mpsmax)
  uint8_t ready_timeout = 10;    // CAP.TO in 500 ms units
  uint16_t max_io_queues = 64;   // I/O SQ/CQ pairs offered through Number of Queues
  bool sgl = false;              // report and accept SGLs for NVM I/O commands
  bool volatile_write_cache = true;
  std::vector<NamespaceConfig> namespaces{NamespaceConfig{}};
  unsigned workers = 1;          // I/O threads; a CQ and all SQs feeding it share a worker
  IdlePolicy idle;
  DeviceModel device_model;
  SecondaryControllers secondaries;

  // Throws aisio::Error(invalid_argument) naming the offending field.
  void validate() const;
};

// A namespace backing as every command and config file spells it: "ram", "null" or
// "file:PATH". Sets ns.backing (and ns.path for file:); false for anything else, so the
// caller can say where the bad value came from.
bool parse_backing(std::string_view text, NamespaceConfig& ns);

}  // namespace aisio::emu
