// BAR mapping for a function bound to uio_pci_generic: mmap of sysfs resourceN.
#pragma once
#include <memory>
#include <string>

#include "pcie/mmio.hpp"
#include "pcie/sysfs.hpp"

namespace aisio::pcie {

class UioBar final : public MmioWindow {
 public:
  // Maps BAR `index` (must be a memory BAR) of `bdf` and sets memory space and bus
  // master enable in its command register. Unless require_uio is false, the function
  // must be bound to uio_pci_generic (mapping a BAR the kernel driver owns would race
  // with it); the error says how to bind it.
  static std::shared_ptr<UioBar> open(const std::string& bdf, unsigned index = 0, const Sysfs& sys = {},
                                      bool require_uio = true);
  ~UioBar() override;
  std::string describe() const override;  // "0000:01:00.0 BAR0 (uio)"
  const std::string& bdf() const { return bdf_; }
  unsigned index() const { return index_; }

 private:
  UioBar(uint8_t* base, size_t size, std::string bdf, unsigned index)
      : MmioWindow(base, size), bdf_(std::move(bdf)), index_(index) {}
  std::string bdf_;
  unsigned index_;
};

}  // namespace aisio::pcie
