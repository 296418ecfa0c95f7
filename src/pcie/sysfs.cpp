#include "pcie/sysfs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace aisio::pcie {

Sysfs::Sysfs(std::string root) : root_(std::move(root)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

std::string Sysfs::default_root() {
  const char* e = std::getenv("AISIO_SYSFS_ROOT");
  return e && *e ? e : "/sys";
}

namespace {

uint64_t parse_hex(const std::string& s, const std::string& what) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 16);
  if (errno || end == s.c_str()) throw Error(Errc::protocol, "unparsable " + what + ": '" + s + "'");
  return v;
}

// The last component of a symlink's target ("" when it is not a readable link).
std::string link_basename(const std::string& path) {
  std::error_code ec;
  return std::filesystem::read_symlink(path, ec).filename().string();
}

bool exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

}  // namespace

std::string read_attr(const std::string& path) {
  auto v = try_read_attr(path);
  if (!v) throw_errno("read " + path);
  return *v;
}

std::optional<std::string> try_read_attr(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string s;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      errno = e;
      return std::nullopt;
    }
    if (n == 0) break;
    s.append(buf, size_t(n));
  }
  ::close(fd);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

void write_attr(const std::string& path, std::string_view value) {
  // O_TRUNC as a shell's '>' does: sysfs ignores it, a fake tree needs it.
  const Fd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!fd) throw_errno("open " + path + " for writing");
  ssize_t n;
  do n = ::write(fd.get(), value.data(), value.size());
  while (n < 0 && errno == EINTR);
  if (n < 0) throw_errno("write '" + std::string(value) + "' to " + path);
}

std::string normalize_bdf(std::string_view in) {
  // [domain:]bus:dev.fn, in hex
  static const std::regex bdf("(?:([[:xdigit:]]{1,4}):)?([[:xdigit:]]{1,2}):([[:xdigit:]]{1,2})\\.([[:xdigit:]])");
  std::string s(in);
  std::smatch m;
  if (!std::regex_match(s, m, bdf))
    throw Error(Errc::invalid_argument, "not a PCI address: '" + s + "' (want 0000:01:00.0)");
  auto field = [&](int i) { return m[i].matched ? unsigned(std::stoul(m[i].str(), nullptr, 16)) : 0u; };
  unsigned d = field(1), b = field(2), v = field(3), f = field(4);
  if (v > 31 || f > 7) throw Error(Errc::invalid_argument, "not a PCI address: '" + s + "' (device <= 1f, function <= 7)");
  return fmt::format("{:04x}:{:02x}:{:02x}.{:x}", d, b, v, f);
}

PciFunction read_function(const std::string& bdf_in, const Sysfs& sys) {
  PciFunction f;
  f.bdf = normalize_bdf(bdf_in);
  std::string dir = sys.device_dir(f.bdf);
  if (!exists(dir)) throw Error(Errc::invalid_argument, "no PCI function " + f.bdf + " (" + dir + " does not exist)");
  f.vendor = uint16_t(parse_hex(read_attr(dir + "/vendor"), dir + "/vendor"));
  f.device = uint16_t(parse_hex(read_attr(dir + "/device"), dir + "/device"));
  f.class_code = uint32_t(parse_hex(read_attr(dir + "/class"), dir + "/class")) & 0xFFFFFF;
  if (auto v = try_read_attr(dir + "/subsystem_vendor")) f.subsystem_vendor = uint16_t(parse_hex(*v, "subsystem_vendor"));
  if (auto v = try_read_attr(dir + "/subsystem_device")) f.subsystem_device = uint16_t(parse_hex(*v, "subsystem_device"));
  f.driver = link_basename(dir + "/driver");
  if (auto v = try_read_attr(dir + "/driver_override"); v && *v != "(null)") f.driver_override = *v;
  if (auto v = try_read_attr(dir + "/numa_node")) std::from_chars(v->data(), v->data() + v->size(), f.numa_node);
  f.iommu_group = link_basename(dir + "/iommu_group");
  if (auto v = try_read_attr(dir + "/sriov_totalvfs")) {
    f.sriov_capable = true;
    f.sriov_totalvfs = uint32_t(std::strtoul(v->c_str(), nullptr, 10));
    if (auto n = try_read_attr(dir + "/sriov_numvfs")) f.sriov_numvfs = uint32_t(std::strtoul(n->c_str(), nullptr, 10));
  }
  f.physfn = link_basename(dir + "/physfn");
  if (auto r = try_read_attr(dir + "/resource")) {
    std::istringstream in(*r);
    std::string start, end, flags;
    if (in >> start >> end >> flags) {
      uint64_t s = parse_hex(start, "resource"), e = parse_hex(end, "resource");
      if (e > s) f.bar0_size = e - s + 1;
    }
  }
  return f;
}

std::vector<PciFunction> enumerate(std::optional<uint32_t> class_code, const Sysfs& sys) {
  std::vector<PciFunction> out;
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(sys.devices_dir(), ec))
    if (std::string n = e.path().filename().string(); !n.starts_with('.')) names.push_back(std::move(n));
  if (ec) throw Error(Errc::system, "open " + sys.devices_dir() + ": " + ec.message());
  std::sort(names.begin(), names.end());
  for (auto& n : names) {
    std::string dir = sys.device_dir(n);
    if (class_code) {
      auto c = try_read_attr(dir + "/class");
      if (!c || (parse_hex(*c, dir + "/class") & 0xFFFFFF) != *class_code) continue;
    }
    out.push_back(read_function(n, sys));
  }
  return out;
}

const char* driver_name(Driver d) {
  switch (d) {
    case Driver::uio_pci_generic: return "uio_pci_generic";
    case Driver::vfio_pci: return "vfio-pci";
    case Driver::nvme: return "nvme";
    case Driver::none: return "";
  }
  return "";
}


Driver parse_driver(std::string_view n) {
  if (n == "uio" || n == "uio_pci_generic" || n == "uio-pci-generic") return Driver::uio_pci_generic;
  if (n == "vfio" || n == "vfio-pci" || n == "vfio_pci") return Driver::vfio_pci;
  if (n == "nvme" || n == "kernel") return Driver::nvme;
  if (n == "none" || n.empty()) return Driver::none;
  throw Error(Errc::invalid_argument, "unknown driver '" + std::string(n) + "' (want uio, vfio, nvme or none)");
}

Driver driver_of(const PciFunction& f) {
  for (Driver d : {Driver::uio_pci_generic, Driver::vfio_pci, Driver::nvme})
    if (f.driver == driver_name(d)) return d;
  return Driver::none;
}

void unbind_driver(const std::string& bdf_in, const Sysfs& sys) {
  std::string bdf = normalize_bdf(bdf_in);
  std::string dir = sys.device_dir(bdf);
  if (!exists(dir)) throw Error(Errc::invalid_argument, "no PCI function " + bdf);
  std::string drv = link_basename(dir + "/driver");
  if (drv.empty()) return;
  write_attr(dir + "/driver/unbind", bdf);
}

void bind_driver(const std::string& bdf_in, Driver driver, const Sysfs& sys, std::chrono::milliseconds settle) {
  std::string bdf = normalize_bdf(bdf_in);
  PciFunction f = read_function(bdf, sys);
  std::string dir = sys.device_dir(bdf);
  std::string want = driver_name(driver);
  if (driver == Driver::none) {
    unbind_driver(bdf, sys);
    if (exists(dir + "/driver_override")) write_attr(dir + "/driver_override", "\n");
    return;
  }
  if (f.driver == want) return;
  if (!exists(sys.driver_dir(want)))
    throw Error(Errc::not_supported, "driver " + want + " is not loaded: run 'modprobe " + want +
                                         "' (as root), then bind again");
  if (driver == Driver::vfio_pci && f.iommu_group.empty())
    throw Error(Errc::not_supported,
                bdf + " has no IOMMU group, so vfio-pci cannot use it: enable the IOMMU (BIOS VT-d/AMD-Vi and "
                      "kernel parameter intel_iommu=on or amd_iommu=on), or bind to uio instead");
  if (!f.driver.empty()) write_attr(dir + "/driver/unbind", bdf);
  write_attr(dir + "/driver_override", want);
  try {
    write_attr(sys.root() + "/bus/pci/drivers_probe", bdf);
  } catch (const Error&) {
    // Probe failures surface below as "not bound"; the kernel log has the reason.
  }
  auto deadline = std::chrono::steady_clock::now() + settle;
  for (;;) {
    std::string now = link_basename(dir + "/driver");
    if (now == want) return;
    if (std::chrono::steady_clock::now() >= deadline) {
      throw Error(Errc::system, bdf + " is not bound to " + want + " after the probe (driver now: " +
                                    (now.empty() ? std::string("none") : now) + "); see dmesg");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

namespace {
// Reads or writes the command register (config offset 4) through the sysfs config file.
void access_command(const std::string& bdf_in, const Sysfs& sys, bool write, uint8_t (&b)[2]) {
  std::string path = sys.device_dir(normalize_bdf(bdf_in)) + "/config";
  const Fd fd(::open(path.c_str(), (write ? O_RDWR : O_RDONLY) | O_CLOEXEC));
  if (!fd) throw_errno("open " + path + (write ? " for writing (needs root)" : ""));
  ssize_t n = write ? pwrite(fd.get(), b, 2, 4) : pread(fd.get(), b, 2, 4);
  if (n != 2)
    throw_errno((write ? "write the command register to " : "read the command register from ") + path,
                n < 0 ? errno : EIO);
}
}  // namespace

uint16_t read_command(const std::string& bdf, const Sysfs& sys) {
  uint8_t b[2];
  access_command(bdf, sys, false, b);
  return uint16_t(b[0] | (b[1] << 8));
}

void write_command(const std::string& bdf, uint16_t v, const Sysfs& sys) {
  uint8_t b[2] = {uint8_t(v), uint8_t(v >> 8)};
  access_command(bdf, sys, true, b);
}

uint16_t enable_bus_master(const std::string& bdf, const Sysfs& sys) {
  uint16_t cmd = read_command(bdf, sys);
  uint16_t want = cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
  if (want != cmd) write_command(bdf, want, sys);
  return want;
}

void set_sriov_numvfs(const std::string& bdf_in, uint32_t n, const Sysfs& sys) {
  std::string bdf = normalize_bdf(bdf_in);
  PciFunction f = read_function(bdf, sys);
  if (!f.sriov_capable) throw Error(Errc::not_supported, bdf + " is not SR-IOV capable (no sriov_totalvfs)");
  if (n > f.sriov_totalvfs)
    throw Error(Errc::invalid_argument, bdf + " supports at most " + std::to_string(f.sriov_totalvfs) + " VFs");
  std::string path = sys.device_dir(bdf) + "/sriov_numvfs";
  if (f.sriov_numvfs == n) return;
  if (f.sriov_numvfs != 0 && n != 0) write_attr(path, "0");
  write_attr(path, std::to_string(n));
}

}  // namespace aisio::pcie
