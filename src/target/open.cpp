#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <regex>

#include "common/error.hpp"
#include "common/units.hpp"
#include "emu/attach.hpp"
#include "emu/controller.hpp"
#include "pcie/device.hpp"
#include "target/local.hpp"
#include "target/open.hpp"

namespace aisio::target {

namespace {

// A software controller inside this process, started here and stopped after the
// driver's controller has shut down (LocalTarget releases `keep` last).
std::shared_ptr<Target> serve(const emu::EmuConfig& cfg, const std::string& describe, const OpenOptions& o) {
  auto dev = std::make_shared<emu::SoftController>(cfg);
  dev->start();
  auto ctrl = nvme::Controller::create(dev->bar0(describe), dev->dma(), o.controller);
  return std::make_shared<LocalTarget>(std::move(ctrl), describe, dev, dev.get());
}

std::shared_ptr<Target> open_embedded(const std::string& handle, const OpenOptions& o) {
  emu::EmuConfig cfg;
  cfg.workers = std::max(1u, o.emu_workers);
  if (handle.size() > 9) cfg.namespaces[0].size_bytes = parse_size(handle.substr(9));
  return serve(cfg, "embedded", o);
}

std::shared_ptr<Target> open_image(const std::string& path, const OpenOptions& o) {
  struct stat st {};
  if (path.empty()) throw Error(Errc::invalid_argument, "image: needs a file, as in image:/path/to/fs.img");
  if (::stat(path.c_str(), &st) != 0) throw_errno("image " + path);
  if (!S_ISREG(st.st_mode)) throw Error(Errc::invalid_argument, "image " + path + ": not a regular file");
  emu::EmuConfig cfg;
  cfg.serial = "AISIOIMG0001";
  cfg.model = "aisio software NVMe controller (image)";
  cfg.workers = std::max(1u, o.emu_workers);
  auto& ns = cfg.namespaces[0];
  ns.lba_size = o.image_lba_size;
  ns.size_bytes = uint64_t(st.st_size) / ns.lba_size * ns.lba_size;
  ns.backing = emu::Backing::file;
  ns.path = path;
  return serve(cfg, "image:" + path, o);
}

std::shared_ptr<Target> open_emu(const std::string& handle, const OpenOptions& o) {
  auto a = std::make_shared<emu::Attached>(emu::attach(handle));
  auto ctrl = nvme::Controller::create(a->bar0, a->dma, o.controller);
  return std::make_shared<LocalTarget>(std::move(ctrl), handle, a);
}

std::shared_ptr<Target> open_pci(const std::string& bdf, const OpenOptions& o) {
  auto dev = std::make_shared<pcie::UserDevice>(pcie::open_device(bdf));
  auto ctrl = nvme::Controller::create(dev->bar0, dev->dma, o.controller);
  return std::make_shared<LocalTarget>(std::move(ctrl), bdf, dev);
}

}  // namespace

std::shared_ptr<Target> open(const std::string& handle, const OpenOptions& o) {
  if (handle.starts_with("emu:")) return open_emu(handle, o);
  if (handle == "embedded" || handle.starts_with("embedded:")) return open_embedded(handle, o);
  if (handle.starts_with("image:")) return open_image(handle.substr(6), o);
  for (bool vf : {true, false}) {
    std::string_view h(handle), prefix = vf ? "homid-vf" : "homid";
    if (h.starts_with(prefix) && (h.size() == prefix.size() || h[prefix.size()] == ':' || h[prefix.size()] == '/'))
      return open_homid(h.substr(prefix.size()), o, vf);
  }
  if (handle.starts_with("tcp://")) return open_tcp(handle, o);
  static const std::regex bdf(R"(^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$)");
  if (std::regex_match(handle, bdf)) return open_pci(handle.size() == 7 ? "0000:" + handle : handle, o);
  throw Error(Errc::invalid_argument, "unknown controller handle '" + handle + "': use " + kHandleHelp);
}

}  // namespace aisio::target
