// Every ublk export of homid: one Control for /dev/ublk-control and one Device per
// `[[controller.namespace]] ublk = true`. Created after the controllers are up and
// destroyed before they shut down.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "homi/config.hpp"
#include "homi/wire.hpp"
#include "homi/ublk/device.hpp"

namespace aisio::homi::ublk {

class Exports {
 public:
  struct Target {
    std::string name;
    nvme::Controller* ctrl = nullptr;
    const ControllerConfig* cfg = nullptr;
  };
  // nullptr when no namespace asks for ublk. Throws Error; devices already created are
  // stopped and deleted again before it does.
  static std::unique_ptr<Exports> start(const std::vector<Target>& targets);
  ~Exports();

  // The exports of the controllers `rule` allows.
  std::vector<wire::UblkStat> stats(const AccessRule& rule) const;
  // The controller index and namespace exported as block device `disk` ("ublkb0").
  std::optional<std::pair<uint32_t, uint32_t>> match_disk(const std::string& disk) const;

 private:
  Exports() = default;
  std::unique_ptr<Control> ctl_;
  struct Entry {
    uint32_t ctrl;
    std::string name;
    std::unique_ptr<Device> dev;
  };
  std::vector<Entry> devs_;
};

// `homid --check`: when the configuration exports a namespace, /dev/ublk-control must
// exist (else "load the ublk_drv module") and fixed device ids must be free (or left
// for recovery by a homid that died). Returns a line for the report, "" when unused.
std::string preflight(const std::vector<ControllerConfig>& controllers);

}  // namespace aisio::homi::ublk
