// Opening a controller from a handle given on the command line:
//   emu:NAME         a software controller started with `aisio emu --name NAME`
//   embedded[:SIZE]  a software controller inside this process (RAM namespace of SIZE)
//   DDDD:BB:DD.F     a PCIe function bound to uio_pci_generic or vfio-pci
// The same driver code runs on all three.
#pragma once
#include <memory>
#include <string>

#include "nvme/controller.hpp"

namespace aisio::tools {

struct Target {
  std::shared_ptr<nvme::Controller> ctrl;
  std::shared_ptr<void> keep;  // what the handle needs alive: emulator, attachment, PCIe device
  std::string handle;
};

Target open_target(const std::string& handle, const nvme::ControllerOptions& opt = {});

}  // namespace aisio::tools
