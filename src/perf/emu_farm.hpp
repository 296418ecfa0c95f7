// Software controllers started inside the perf process (--emu-devices N): N
// SoftControllers with one namespace each (null backing by default) and the device
// model of EmuFarmOptions, each driven through its BAR0 by our driver exactly like a
// PCIe device. Handles are "emu-farm:0" ... "emu-farm:N-1".
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nvme/controller.hpp"
#include "perf/options.hpp"

namespace aisio::emu {
class SoftController;
}

namespace aisio::perf {

class EmuFarm {
 public:
  EmuFarm(const EmuFarmOptions& o, const nvme::ControllerOptions& copt = {});
  ~EmuFarm();
  EmuFarm(const EmuFarm&) = delete;
  EmuFarm& operator=(const EmuFarm&) = delete;

  size_t size() const { return ctrls_.size(); }
  const std::shared_ptr<nvme::Controller>& controller(size_t i) const { return ctrls_[i]; }
  std::string name(size_t i) const { return "emu-farm:" + std::to_string(i); }
  emu::SoftController& device(size_t i) { return *devs_[i]; }
  // Releases the driver's controllers, then stops the software controllers.
  void close();

 private:
  std::vector<std::shared_ptr<emu::SoftController>> devs_;
  std::vector<std::shared_ptr<nvme::Controller>> ctrls_;
};

}  // namespace aisio::perf
