#include "target/farm.hpp"

#include <fmt/format.h>

#include "common/error.hpp"
#include "emu/controller.hpp"
#include "target/local.hpp"

namespace aisio::target {

std::vector<std::shared_ptr<Target>> open_farm(const EmuFarmOptions& o, const nvme::ControllerOptions& copt) {
  // Each LocalTarget stops its software controller after its driver controller; a
  // failure part-way destroys the ones already made in that order too.
  std::vector<std::shared_ptr<Target>> farm;
  for (uint32_t i = 0; i < o.devices; ++i) {
    emu::EmuConfig cfg;
    cfg.serial = fmt::format("AISIOFARM{:03}", i);
    cfg.model = "aisio software NVMe controller (farm)";
    cfg.workers = o.workers;
    cfg.device_model.iops = o.iops;
    cfg.device_model.bandwidth = o.bandwidth;
    cfg.device_model.latency_us = o.latency_us;
    emu::NamespaceConfig ns;
    ns.size_bytes = o.ns_bytes;
    ns.lba_size = o.lba_size;
    if (!emu::parse_backing(o.backing, ns) || ns.backing == emu::Backing::file)
      throw Error(Errc::invalid_argument, "--emu-backing must be null or ram");
    cfg.namespaces = {ns};
    auto name = fmt::format("emu-farm:{}", i);
    auto dev = std::make_shared<emu::SoftController>(cfg);
    dev->start();
    auto ctrl = nvme::Controller::create(dev->bar0(name), dev->dma(), copt);
    farm.push_back(std::make_shared<LocalTarget>(std::move(ctrl), name, dev, dev.get()));
  }
  return farm;
}

}  // namespace aisio::target
