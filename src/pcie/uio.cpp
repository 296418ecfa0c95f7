#include "pcie/uio.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace aisio::pcie {

std::shared_ptr<UioBar> UioBar::open(const std::string& bdf_in, unsigned index, const Sysfs& sys, bool require_uio) {
  std::string bdf = normalize_bdf(bdf_in);
  PciFunction f = read_function(bdf, sys);
  if (require_uio && f.driver != "uio_pci_generic")
    throw Error(Errc::invalid_argument,
                bdf + " is bound to " + (f.driver.empty() ? std::string("no driver") : f.driver) +
                    ", not uio_pci_generic: run 'aisio bind --driver uio " + bdf + "' first");
  std::string path = sys.device_dir(bdf) + "/resource" + std::to_string(index);
  const Fd fd(::open(path.c_str(), O_RDWR | O_SYNC | O_CLOEXEC));
  if (!fd) throw_errno("open " + path + (errno == EACCES ? " (needs root)" : ""));
  struct stat st;
  if (fstat(fd.get(), &st) != 0) throw_errno("stat " + path);
  size_t size = size_t(st.st_size);
  if (size == 0)
    throw Error(Errc::not_supported, path + " is empty (BAR" + std::to_string(index) + " unassigned or I/O space)");
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) throw_errno("mmap " + path);
  std::shared_ptr<UioBar> bar(new UioBar(static_cast<uint8_t*>(p), size, bdf, index));
  enable_bus_master(bdf, sys);
  return bar;
}

UioBar::~UioBar() { munmap(base_, size_); }

std::string UioBar::describe() const { return bdf_ + " BAR" + std::to_string(index_) + " (uio)"; }

}  // namespace aisio::pcie
