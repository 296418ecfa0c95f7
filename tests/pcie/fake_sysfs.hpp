// A fake /sys tree in a temporary directory for the sysfs-level unit tests.
#pragma once
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace aisio::test {

namespace fs = std::filesystem;

class FakeSysfs {
 public:
  FakeSysfs() {
    char tmpl[] = "/tmp/aisio-sysfs.XXXXXX";
    root_ = mkdtemp(tmpl);
    fs::create_directories(root_ / "bus/pci/devices");
    fs::create_directories(root_ / "devices/pci0000:00");
    touch("bus/pci/drivers_probe");
    touch("bus/pci/drivers/nvme/unbind");
    touch("bus/pci/drivers/nvme/bind");
    touch("bus/pci/drivers/uio_pci_generic/unbind");
    touch("bus/pci/drivers/uio_pci_generic/bind");
  }
  ~FakeSysfs() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  std::string root() const { return root_.string(); }

  struct Fn {
    std::string bdf;
    std::string vendor = "0x1b36", device = "0x0010", cls = "0x010802";
    std::string driver;  // "" = unbound
    int numa = -1;
    int totalvfs = -1;   // -1 = not SR-IOV capable
    int numvfs = 0;
    std::string physfn;
    std::string iommu_group;
    size_t bar0 = 16384;
  };
  // Adds a function the way the kernel lays it out: the device directory under
  // devices/, a bus/pci/devices symlink to it, attributes, driver link, config, resource0.
  void add(const Fn& f) {
    auto dir = root_ / "devices/pci0000:00" / f.bdf;
    fs::create_directories(dir);
    fs::create_symlink(dir, root_ / "bus/pci/devices" / f.bdf);
    write(dir / "vendor", f.vendor + "\n");
    write(dir / "device", f.device + "\n");
    write(dir / "class", f.cls + "\n");
    write(dir / "subsystem_vendor", "0x1af4\n");
    write(dir / "subsystem_device", "0x1100\n");
    write(dir / "numa_node", std::to_string(f.numa) + "\n");
    write(dir / "driver_override", "(null)\n");
    if (f.totalvfs >= 0) {
      write(dir / "sriov_totalvfs", std::to_string(f.totalvfs) + "\n");
      write(dir / "sriov_numvfs", std::to_string(f.numvfs) + "\n");
    }
    if (!f.physfn.empty()) fs::create_symlink("../" + f.physfn, dir / "physfn");
    if (!f.driver.empty()) set_driver(f.bdf, f.driver);
    if (!f.iommu_group.empty()) {
      fs::create_directories(root_ / "kernel/iommu_groups" / f.iommu_group);
      fs::create_symlink(root_ / "kernel/iommu_groups" / f.iommu_group, dir / "iommu_group");
    }
    std::string cfg(256, '\0');
    cfg[0] = char(0x36), cfg[1] = char(0x1b), cfg[2] = 0x10, cfg[3] = 0;
    cfg[4] = 0x02;  // memory space on, bus master off
    write(dir / "config", cfg);
    char res[256];
    std::snprintf(res, sizeof res, "0x00000000fe800000 0x%016zx 0x0000000000140204\n", size_t(0xfe800000 + f.bar0 - 1));
    write(dir / "resource", res);
    std::ofstream(dir / "resource0", std::ios::binary).close();
    fs::resize_file(dir / "resource0", f.bar0);
  }
  void set_driver(const std::string& bdf, const std::string& drv) {
    auto link = root_ / "devices/pci0000:00" / bdf / "driver";
    std::error_code ec;
    fs::remove(link, ec);
    if (drv.empty()) return;
    fs::create_directories(root_ / "bus/pci/drivers" / drv);
    touch("bus/pci/drivers/" + drv + "/unbind");
    fs::create_symlink(root_ / "bus/pci/drivers" / drv, link);
  }
  std::string read(const std::string& rel) const {
    std::ifstream in(root_ / rel, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::string dev(const std::string& bdf, const std::string& attr) const {
    return read("devices/pci0000:00/" + bdf + "/" + attr);
  }
  std::filesystem::path dev_path(const std::string& bdf) const { return root_ / "devices/pci0000:00" / bdf; }
  void touch(const std::string& rel) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel).close();
  }
  static void write(const std::filesystem::path& p, const std::string& s) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << s;
  }

 private:
  std::filesystem::path root_;
};

}  // namespace aisio::test
