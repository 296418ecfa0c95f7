#include "pcie/sriov.hpp"

#include <filesystem>

#include "common/error.hpp"

namespace aisio::pcie {

namespace fs = std::filesystem;

bool sriov_autoprobe(const std::string& pf, const Sysfs& sys) {
  return read_attr(sys.device_dir(normalize_bdf(pf)) + "/sriov_drivers_autoprobe") != "0";
}

void set_sriov_autoprobe(const std::string& pf, bool on, const Sysfs& sys) {
  write_attr(sys.device_dir(normalize_bdf(pf)) + "/sriov_drivers_autoprobe", on ? "1" : "0");
}

std::string vf_address(const std::string& pf_in, uint16_t vfn, const Sysfs& sys) {
  std::string pf = normalize_bdf(pf_in);
  if (vfn == 0) throw Error(Errc::invalid_argument, "VF numbers start at 1");
  std::string link = sys.device_dir(pf) + "/virtfn" + std::to_string(vfn - 1);
  std::error_code ec;
  fs::path target = fs::read_symlink(link, ec);
  if (ec) throw Error(Errc::invalid_argument, pf + " has no VF " + std::to_string(vfn) + " (" + link + ": " + ec.message() + ")");
  return target.filename().string();
}

void function_reset(const std::string& bdf, const Sysfs& sys) {
  write_attr(sys.device_dir(normalize_bdf(bdf)) + "/reset", "1");
}

std::string nvme_char_device(const std::string& bdf_in, const Sysfs& sys) {
  std::string bdf = normalize_bdf(bdf_in);
  std::error_code ec;
  for (auto& e : fs::directory_iterator(sys.device_dir(bdf) + "/nvme", ec)) {
    std::string n = e.path().filename().string();
    if (n.rfind("nvme", 0) == 0) return "/dev/" + n;
  }
  PciFunction f = read_function(bdf, sys);
  throw Error(Errc::invalid_argument, bdf + " has no kernel nvme controller (driver: " +
                                          (f.driver.empty() ? std::string("none") : f.driver) +
                                          "): an SR-IOV PF must stay bound to the nvme driver");
}

}  // namespace aisio::pcie
