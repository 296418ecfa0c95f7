// Helpers of the in-guest tests: configuration, binding, the kernel's block device for a
// function, and a minimal hand-rolled admin queue (independent of src/nvme) that checks
// BAR access, bus mastering and DMA bus addresses on their own.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "memory/dma.hpp"
#include "pcie/mmio.hpp"
#include "pcie/sysfs.hpp"

namespace aisio::guest {

// The testbed configuration ($AISIO_TESTBED_CONFIG: basic, lba4k, ...), "" outside it.
std::string config();
bool in_testbed();

// The QEMU NVMe physical functions (1b36:0010, not VFs), sorted by BDF. Skips the
// calling test, with the reason, when not in the testbed or there are none.
std::vector<pcie::PciFunction> qemu_nvme_functions();
#define AISIO_GUEST_FUNCTIONS(var)                                   \
  auto var = ::aisio::guest::qemu_nvme_functions();                  \
  if (var.empty()) GTEST_SKIP() << ::aisio::guest::skip_reason();    \
  do {                                                               \
  } while (0)
std::string skip_reason();

// Binds and checks, or skips when the driver's module is missing.
void bind_or_fail(const std::string& bdf, pcie::Driver d);

// The kernel's block device (/dev/nvmeXnY) for namespace nsid of function bdf while
// it is bound to the nvme driver; waits up to `wait_ms` for it to appear.
std::string kernel_block_device(const std::string& bdf, uint32_t nsid, int wait_ms = 15000);

// Raw admin queue: disable, program AQA/ASQ/ACQ, enable, Identify Controller (CNS 1).
// Returns the 4 KiB identify page. Throws aisio::Error on timeouts or bad status.
struct RawIdentify {
  std::vector<uint8_t> page;
  uint64_t data_iova = 0;   // PRP1
  uint64_t data_iova2 = 0;  // PRP2 (0 when the data did not cross a page)
  uint16_t vid() const { return uint16_t(page[0] | (page[1] << 8)); }
  std::string serial() const;
  std::string model() const;
};
// straddle_2m: place the data across a 2 MiB virtual boundary (PRP1 + PRP2 then point
// into two different hugepages).
RawIdentify raw_identify(const MmioWindow& bar, DmaHeap& heap, bool straddle_2m = false);

// Deterministic pattern: every 8 bytes = hash(seed, byte offset).
void fill_pattern(uint8_t* p, size_t n, uint64_t seed, uint64_t base_offset);
// First mismatching byte offset, or -1.
long long check_pattern(const uint8_t* p, size_t n, uint64_t seed, uint64_t base_offset);

}  // namespace aisio::guest
