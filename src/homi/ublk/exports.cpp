#include "homi/ublk/exports.hpp"

#include <fmt/format.h>

#include "common/error.hpp"
#include "homi/log.hpp"

namespace aisio::homi::ublk {

std::unique_ptr<Exports> Exports::start(const std::vector<Target>& targets) {
  bool any = false;
  for (auto& t : targets)
    for (auto& b : t.cfg->backings) any |= b.ublk.enabled;
  if (!any) return nullptr;
  std::unique_ptr<Exports> x(new Exports);
  x->ctl_ = std::make_unique<Control>();
  log(Level::info, "ublk: kernel features: {}", x->ctl_->feature_list());
  for (uint32_t i = 0; i < targets.size(); ++i) {
    const Target& t = targets[i];
    for (auto& b : t.cfg->backings) {
      if (!b.ublk.enabled) continue;
      // On failure `x` is destroyed: the devices created so far are stopped and deleted.
      x->devs_.push_back(Entry{i, t.name, Device::create(*x->ctl_, *t.ctrl, b.nsid, b.ublk, t.name)});
    }
  }
  return x;
}

Exports::~Exports() {
  while (!devs_.empty()) devs_.pop_back();  // last created, first deleted
}

std::vector<wire::UblkStat> Exports::stats(const AccessRule& rule) const {
  std::vector<wire::UblkStat> out;
  for (auto& e : devs_)
    if (rule.allows_controller(e.name)) out.push_back(e.dev->stat(e.ctrl));
  return out;
}

std::optional<std::pair<uint32_t, uint32_t>> Exports::match_disk(const std::string& disk) const {
  for (auto& e : devs_)
    if (e.dev->disk_name() == disk) return std::make_pair(e.ctrl, e.dev->nsid());
  return std::nullopt;
}

std::string preflight(const std::vector<ControllerConfig>& controllers) {
  std::vector<std::pair<const ControllerConfig*, const NamespaceBacking*>> wanted;
  for (auto& c : controllers)
    for (auto& b : c.backings)
      if (b.ublk.enabled) wanted.emplace_back(&c, &b);
  if (wanted.empty()) return "";
  Control ctl;  // throws "load the ublk_drv module" when it is not loaded
  std::string ids;
  for (auto& [c, b] : wanted) {
    if (b->ublk.dev_id < 0) continue;
    if (auto info = ctl.info(uint32_t(b->ublk.dev_id))) {
      if (info->state == S_DEV_QUIESCED && (info->flags & F_USER_RECOVERY)) continue;  // recovered at start
      throw Error(Errc::invalid_argument,
                  fmt::format("{}: ublk device id {} (namespace {}) is taken: /dev/ublkb{} exists (server pid {})",
                              c->name, b->ublk.dev_id, b->nsid, b->ublk.dev_id, info->ublksrv_pid));
    }
  }
  return fmt::format("ublk: {} export(s); kernel features: {}", wanted.size(), ctl.feature_list());
}

}  // namespace aisio::homi::ublk
