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

struct ExportStatus {
  uint32_t ctrl = 0;  // index of the controller in homid's configuration
  std::string ctrl_name;
  DeviceStatus dev;
};

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

  std::vector<ExportStatus> status() const;
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

// What `aisio homi status` shows of one export (queues summed, their NVMe qids listed).
wire::UblkStat wire_stat(const ExportStatus& x);

// `homid --check`: when the configuration exports a namespace, /dev/ublk-control must
// exist (else "load the ublk_drv module") and fixed device ids must be free (or left
// for recovery by a homid that died). Returns a line for the report, "" when unused.
std::string preflight(const std::vector<ControllerConfig>& controllers);

}  // namespace aisio::homi::ublk
