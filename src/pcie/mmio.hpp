// A mapped register window (a PCIe BAR, or the software controller's shared page).
//
// Accessors are volatile loads and stores of the exact width so the compiler neither
// merges, splits nor elides them. 64-bit registers are written low dword first
// (as Linux lo_hi_writeq): controllers must accept two 32-bit accesses.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace aisio {

class MmioWindow {
 public:
  virtual ~MmioWindow() = default;
  uint8_t* base() const { return base_; }
  size_t size() const { return size_; }
  virtual std::string describe() const = 0;  // "0000:01:00.0 BAR0 (uio)", "emu:demo"

  uint32_t read32(uint32_t off) const { return *reinterpret_cast<volatile uint32_t*>(base_ + off); }
  void write32(uint32_t off, uint32_t v) const { *reinterpret_cast<volatile uint32_t*>(base_ + off) = v; }
  uint64_t read64(uint32_t off) const {
    uint64_t lo = read32(off), hi = read32(off + 4);
    return lo | (hi << 32);
  }
  void write64(uint32_t off, uint64_t v) const {
    write32(off, uint32_t(v));
    write32(off + 4, uint32_t(v >> 32));
  }
  volatile uint32_t* reg32(uint32_t off) const { return reinterpret_cast<volatile uint32_t*>(base_ + off); }

 protected:
  MmioWindow(uint8_t* base, size_t size) : base_(base), size_(size) {}
  uint8_t* base_;
  size_t size_;
};

}  // namespace aisio
