// PCI functions through sysfs: enumeration, driver binding, the command register.
//
// Every function takes a Sysfs, the root of the tree to use ("/sys" unless
// $AISIO_SYSFS_ROOT says otherwise), so unit tests can run on a fake tree in a temporary
// directory. Nothing here needs a particular driver; binding needs root.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aisio::pcie {

inline constexpr uint32_t CLASS_NVME = 0x010802;  // mass storage / NVM / NVMe

class Sysfs {
 public:
  Sysfs() : Sysfs(default_root()) {}
  explicit Sysfs(std::string root);
  static std::string default_root();  // $AISIO_SYSFS_ROOT, else "/sys"

  const std::string& root() const { return root_; }
  std::string devices_dir() const { return root_ + "/bus/pci/devices"; }
  std::string device_dir(const std::string& bdf) const { return devices_dir() + "/" + bdf; }
  std::string drivers_dir() const { return root_ + "/bus/pci/drivers"; }
  std::string driver_dir(const std::string& driver) const { return drivers_dir() + "/" + driver; }

 private:
  std::string root_;
};

// "1:0.0", "01:00.0" and "0000:01:00.0" all become "0000:01:00.0"; throws
// Error(invalid_argument) for anything else.
std::string normalize_bdf(std::string_view bdf);

struct PciFunction {
  std::string bdf;                  // "0000:01:00.0"
  uint16_t vendor = 0, device = 0;
  uint16_t subsystem_vendor = 0, subsystem_device = 0;
  uint32_t class_code = 0;          // 24 bits: 0x010802 for NVMe
  std::string driver;               // bound driver's name, "" when unbound
  std::string driver_override;      // "" when none
  int numa_node = -1;               // -1: unknown / single node
  std::string iommu_group;          // "" when the function has no IOMMU group
  bool sriov_capable = false;       // has sriov_totalvfs
  uint32_t sriov_totalvfs = 0, sriov_numvfs = 0;
  std::string physfn;               // BDF of the physical function when this is a VF
  uint64_t bar0_size = 0;           // from the resource file; 0 when unset

  bool is_vf() const { return !physfn.empty(); }
  bool is_nvme() const { return class_code == CLASS_NVME; }
};

// One function's attributes; throws Error(invalid_argument) when it does not exist.
PciFunction read_function(const std::string& bdf, const Sysfs& sys = {});
// Every PCI function, or those of one class (e.g. CLASS_NVME), sorted by BDF.
std::vector<PciFunction> enumerate(std::optional<uint32_t> class_code = std::nullopt, const Sysfs& sys = {});
inline std::vector<PciFunction> enumerate_nvme(const Sysfs& sys = {}) { return enumerate(CLASS_NVME, sys); }

// The drivers aisio binds functions to.
enum class Driver { none, uio_pci_generic, vfio_pci, nvme };
const char* driver_name(Driver d);            // "uio_pci_generic", "vfio-pci", "nvme", ""
// "uio", "uio_pci_generic", "vfio", "vfio-pci", "vfio_pci", "nvme", "kernel", "none".
Driver parse_driver(std::string_view name);
Driver driver_of(const PciFunction& f);       // none for drivers aisio does not know

// Binds a function to `driver` (named bind_driver, not bind: ADL would pick std::bind): unbinds it from its current driver, writes
// driver_override, then bus/pci/drivers_probe, and waits up to `settle` for the driver
// link to appear. A no-op when already bound. Driver::none just unbinds. Throws Error
// with the fix when the driver is not loaded, vfio-pci lacks an IOMMU group, or the
// probe did not bind.
void bind_driver(const std::string& bdf, Driver driver, const Sysfs& sys = {},
          std::chrono::milliseconds settle = std::chrono::milliseconds(5000));
void unbind_driver(const std::string& bdf, const Sysfs& sys = {});

// PCI command register (config offset 4) through the sysfs config file.
inline constexpr uint16_t PCI_COMMAND_MEMORY = 1u << 1;
inline constexpr uint16_t PCI_COMMAND_MASTER = 1u << 2;
inline constexpr uint16_t PCI_COMMAND_INTX_DISABLE = 1u << 10;
uint16_t read_command(const std::string& bdf, const Sysfs& sys = {});
void write_command(const std::string& bdf, uint16_t value, const Sysfs& sys = {});
// Sets memory space and bus master enable; returns the new command register value.
uint16_t enable_bus_master(const std::string& bdf, const Sysfs& sys = {});

// Writes sriov_numvfs (0 first when changing a non-zero count, as the kernel requires).
void set_sriov_numvfs(const std::string& bdf, uint32_t numvfs, const Sysfs& sys = {});

// Small helpers, public for the tools and tests.
std::string read_attr(const std::string& path);                 // trimmed contents; throws
std::optional<std::string> try_read_attr(const std::string& path);
void write_attr(const std::string& path, std::string_view value);  // throws with the path and errno

}  // namespace aisio::pcie
