#include "tools/target.hpp"

#include <regex>

#include "common/error.hpp"
#include "emu/attach.hpp"
#include "emu/controller.hpp"
#include "pcie/device.hpp"
#include "tools/units.hpp"

namespace aisio::tools {

Target open_target(const std::string& handle, const nvme::ControllerOptions& opt) {
  Target t;
  t.handle = handle;
  if (handle.rfind("emu:", 0) == 0) {
    auto a = std::make_shared<emu::Attached>(emu::attach(handle));
    t.ctrl = nvme::Controller::create(a->bar0, a->dma, opt);
    t.keep = a;
    return t;
  }
  if (handle == "embedded" || handle.rfind("embedded:", 0) == 0) {
    emu::EmuConfig cfg;
    if (handle.size() > 9) cfg.namespaces[0].size_bytes = parse_size(handle.substr(9));
    auto dev = std::make_shared<emu::SoftController>(cfg);
    dev->start();
    t.ctrl = nvme::Controller::create(dev->bar0("embedded"), dev->dma(), opt);
    t.keep = dev;
    return t;
  }
  static const std::regex bdf(R"(^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$)");
  if (std::regex_match(handle, bdf)) {
    std::string full = handle.size() == 7 ? "0000:" + handle : handle;
    auto dev = std::make_shared<pcie::UserDevice>(pcie::open_device(full));
    t.ctrl = nvme::Controller::create(dev->bar0, dev->dma, opt);
    t.keep = dev;
    return t;
  }
  throw Error(Errc::invalid_argument, "unknown controller handle '" + handle +
                                          "': use emu:NAME, embedded[:SIZE] or a PCI address like 0000:01:00.0");
}

}  // namespace aisio::tools
