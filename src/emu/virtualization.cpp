#include "emu/virtualization.hpp"

#include <cstring>

#include "spec/status.hpp"
#include "spec/virtualization.hpp"

namespace aisio::emu {

namespace sc = nvme::sc;

Virtualization::Virtualization(const SecondaryControllers& cfg, uint16_t primary_cntlid) : primary_(primary_cntlid) {
  vq_ = Pool{cfg.vq_flexible, uint16_t(cfg.vq_max ? cfg.vq_max : cfg.vq_flexible), cfg.vq_granularity, 0,
             cfg.vq_private};
  vi_ = Pool{cfg.vi_flexible, uint16_t(cfg.vi_max ? cfg.vi_max : cfg.vi_flexible), cfg.vi_granularity, 0,
             cfg.vi_private};
  // Secondary controller i is virtual function i + 1 with the next identifiers after
  // the primary's.
  for (uint16_t i = 0; i < cfg.count; ++i) secondaries_.push_back(Secondary{uint16_t(primary_cntlid + 1 + i), uint16_t(i + 1)});
}

Virtualization::Secondary* Virtualization::find(uint16_t scid) {
  for (auto& s : secondaries_)
    if (s.scid == scid) return &s;
  return nullptr;
}

uint32_t Virtualization::assigned(const Pool& p, const Secondary* except) const {
  uint32_t n = 0;
  for (const auto& s : secondaries_)
    if (&s != except) n += &p == &vq_ ? s.nvq : s.nvi;
  return n;
}

void Virtualization::fill_primary_caps(uint8_t* out) const {
  auto& c = *reinterpret_cast<nvme::PrimaryControllerCaps*>(out);
  c.cntlid = primary_;
  c.crt = nvme::crt::VQ | nvme::crt::VI;
  c.vqfrt = vq_.total;
  c.vqrfa = assigned(vq_, nullptr);
  c.vqrfap = vq_.primary;
  c.vqprt = vq_.priv;
  c.vqfrsm = vq_.max;
  c.vqgran = vq_.gran;
  c.vifrt = vi_.total;
  c.virfa = assigned(vi_, nullptr);
  c.virfap = vi_.primary;
  c.viprt = vi_.priv;
  c.vifrsm = vi_.max;
  c.vigran = vi_.gran;
}

void Virtualization::fill_secondary_list(uint16_t first_scid, uint8_t* out) const {
  auto& l = *reinterpret_cast<nvme::SecondaryControllerList*>(out);
  unsigned n = 0;
  for (const auto& s : secondaries_) {
    if (s.scid < first_scid || n == nvme::MAX_SECONDARY_ENTRIES) continue;
    auto& e = l.entries[n++];
    e.scid = s.scid;
    e.pcid = primary_;
    e.scs = s.online ? 1 : 0;
    e.vfn = s.vfn;
    e.nvq = s.nvq;
    e.nvi = s.nvi;
  }
  l.count = uint8_t(n);
}

Outcome Virtualization::manage(const nvme::Sqe& cmd) {
  uint8_t act = nvme::virt_act_of(cmd), rt = nvme::virt_rt_of(cmd);
  uint16_t cntlid = nvme::virt_cntlid_of(cmd), nr = nvme::virt_nr_of(cmd);
  bool takes_resource = act == nvme::virt_act::PRIMARY_FLEXIBLE_ALLOCATION || act == nvme::virt_act::SECONDARY_ASSIGN;
  if (takes_resource && rt > 1) return fail_specific(sc::INVALID_RESOURCE_IDENTIFIER);
  switch (act) {
    case nvme::virt_act::PRIMARY_FLEXIBLE_ALLOCATION: {
      if (cntlid != primary_) return fail_specific(sc::INVALID_CONTROLLER_IDENTIFIER);
      Pool& p = pool(rt);
      if (nr > p.total - assigned(p, nullptr)) return fail_specific(sc::INVALID_NUMBER_OF_CONTROLLER_RESOURCES);
      p.primary = nr;  // would take effect at the next reset; nothing here consumes it
      return Outcome{nr};
    }
    case nvme::virt_act::SECONDARY_ASSIGN: {
      Secondary* s = find(cntlid);
      if (!s) return fail_specific(sc::INVALID_CONTROLLER_IDENTIFIER);
      if (s->online) return fail_specific(sc::INVALID_SECONDARY_CONTROLLER_STATE);
      Pool& p = pool(rt);
      if (nr > p.max || assigned(p, s) + nr + p.primary > p.total)
        return fail_specific(sc::INVALID_NUMBER_OF_CONTROLLER_RESOURCES);
      (rt == 0 ? s->nvq : s->nvi) = nr;
      return Outcome{nr};
    }
    case nvme::virt_act::SECONDARY_OFFLINE: {
      Secondary* s = find(cntlid);
      if (!s) return fail_specific(sc::INVALID_CONTROLLER_IDENTIFIER);
      // Its flexible resources go back to the pool, as on QEMU 7.2's nvme (our
      // conformance peer): bringing it online again needs a new Assign.
      s->online = false;
      s->nvq = s->nvi = 0;
      return Outcome{};
    }
    case nvme::virt_act::SECONDARY_ONLINE: {
      Secondary* s = find(cntlid);
      if (!s) return fail_specific(sc::INVALID_CONTROLLER_IDENTIFIER);
      // An admin queue and one I/O queue pair need two VQ resources and one interrupt.
      if (s->nvq < 2 || s->nvi < 1) return fail_specific(sc::INVALID_SECONDARY_CONTROLLER_STATE);
      s->online = true;
      return Outcome{};
    }
    default: return fail(sc::INVALID_FIELD);
  }
}

}  // namespace aisio::emu
