// A farm of software controllers inside this process (`aisio perf --emu-devices N`, the
// GPU runs): N controllers with one namespace each and a shared device model, each
// driven through its BAR0 by our driver exactly like a PCIe function. Their handles are
// "emu-farm:0" ... "emu-farm:N-1".
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "target/target.hpp"

namespace aisio::target {

// One null-backed namespace each by default and a device model (PM1753-like when the
// perf options say so); the same fields are what `aisio emu` takes for a process.
struct EmuFarmOptions {
  uint32_t devices = 0;            // 0: none
  uint64_t ns_bytes = 1ull << 40;  // namespace size (null backing: costs nothing)
  uint32_t lba_size = 512;
  double iops = 0;                 // per device; 0: unlimited
  double bandwidth = 0;            // bytes/s per device; 0: unlimited
  uint32_t latency_us = 0;
  uint32_t workers = 1;            // I/O threads per device
  std::string backing = "null";    // null or ram
};

// Throws aisio::Error (invalid_argument for a bad backing); on failure the controllers
// already started are stopped again.
std::vector<std::shared_ptr<Target>> open_farm(const EmuFarmOptions& o, const nvme::ControllerOptions& copt = {});

}  // namespace aisio::target
