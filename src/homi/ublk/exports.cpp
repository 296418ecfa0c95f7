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

std::vector<ExportStatus> Exports::status() const {
  std::vector<ExportStatus> out;
  for (auto& e : devs_) out.push_back(ExportStatus{e.ctrl, e.name, e.dev->status()});
  return out;
}

std::optional<std::pair<uint32_t, uint32_t>> Exports::match_disk(const std::string& disk) const {
  for (auto& e : devs_)
    if (e.dev->disk_name() == disk) return std::make_pair(e.ctrl, e.dev->nsid());
  return std::nullopt;
}

wire::UblkStat wire_stat(const ExportStatus& x) {
  wire::UblkStat u;
  u.ctrl = x.ctrl;
  u.dev_id = x.dev.dev_id;
  u.nsid = x.dev.nsid;
  u.path = x.dev.path;
  u.queues = uint16_t(x.dev.queues.size());
  u.depth = x.dev.depth;
  u.max_io_bytes = x.dev.max_io_bytes;
  u.recovered = x.dev.recovered;
  for (auto& q : x.dev.queues) {
    u.qids += (u.qids.empty() ? "" : ",") + std::to_string(q.qid);
    u.reads += q.reads;
    u.writes += q.writes;
    u.flushes += q.flushes;
    u.discards += q.discards;
    u.write_zeroes += q.write_zeroes;
    u.errors += q.errors;
    u.bytes_read += q.bytes_read;
    u.bytes_written += q.bytes_written;
  }
  return u;
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
