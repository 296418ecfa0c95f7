#include "perf/emu_farm.hpp"

#include <fmt/format.h>

#include "common/error.hpp"
#include "emu/controller.hpp"

namespace aisio::perf {

EmuFarm::EmuFarm(const EmuFarmOptions& o, const nvme::ControllerOptions& copt) {
  try {
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
      if (o.backing == "null") ns.backing = emu::Backing::null;
      else if (o.backing == "ram") ns.backing = emu::Backing::ram;
      else throw Error(Errc::invalid_argument, "--emu-backing must be null or ram");
      cfg.namespaces = {ns};
      auto dev = std::make_shared<emu::SoftController>(cfg);
      dev->start();
      devs_.push_back(dev);
      ctrls_.push_back(nvme::Controller::create(dev->bar0(name(i)), dev->dma(), copt));
    }
  } catch (...) {
    close();
    throw;
  }
}

void EmuFarm::close() {
  ctrls_.clear();  // the driver lets go first (queues are deleted by their owners)
  for (auto& d : devs_) d->stop();
  devs_.clear();
}

EmuFarm::~EmuFarm() { close(); }

}  // namespace aisio::perf
