// homid's policy decisions: which clients a rule admits, which controllers and queue
// memory it allows, and the budgets (clients, queues, DMA bytes, regions) it enforces.
// Each check throws the refusal the client reads; the request handlers call them in a
// fixed order, so a request that breaks two rules always gets the same refusal.
#include <algorithm>

#include "homi/daemon_impl.hpp"
#include "homi/log.hpp"

namespace aisio::homi {

void Daemon::Impl::apply_policy(Policy p) {
  try {
    set_log_level(parse_level(p.log_level));
  } catch (const Error& e) {
    log(Level::warn, "reload: {}", e.what());
  }
  policy = std::move(p);
  for (auto it = clients.begin(); it != clients.end();) {
    const AccessRule* r = policy.match(it->cred.uid, it->cred.gid, it->groups);
    if (!r) {
      drop(*it, "no longer admitted by the reloaded policy");
      it = clients.erase(it);
      continue;
    }
    it->rule = *r;
    ++it;
  }
  log(Level::info, "policy reloaded: {} rule(s), {} queues per client, {} in total", policy.rules.size(),
      policy.limits.max_queues_per_client, policy.limits.max_queues_total);
}

// At accept: the client count first, so a full homid says so whatever the rules.
const AccessRule& Daemon::Impl::admit(const Client& c) const {
  if (clients.size() >= policy.limits.max_clients)
    refuse(Errc::no_memory, fmt::format("homid serves at most {} clients (limits.max_clients)",
                                        policy.limits.max_clients));
  const AccessRule* r = policy.match(c.cred.uid, c.cred.gid, c.groups);
  if (!r)
    refuse(Errc::invalid_argument, fmt::format("uid {} gid {} is not admitted by any [[allow]] rule of homid's policy",
                                               c.cred.uid, c.cred.gid));
  return *r;
}

// A client sees only the controllers its rule names.
ManagedController& Daemon::Impl::controller_for(const Client& c, uint32_t index) {
  if (index >= ctrls.size())
    refuse(Errc::invalid_argument, fmt::format("no controller {} (homid has {})", index, ctrls.size()));
  ManagedController& m = *ctrls[index];
  if (!c.rule->allows_controller(m.name()))
    refuse(Errc::invalid_argument, fmt::format("policy rule '{}' does not allow controller '{}'", c.rule->name, m.name()));
  return m;
}

// A rule's own budget wins over the daemon-wide default.
uint32_t Daemon::Impl::max_queues(const Client& c) const {
  return c.rule && c.rule->max_queues ? c.rule->max_queues : policy.limits.max_queues_per_client;
}

uint64_t Daemon::Impl::max_dma(const Client& c) const {
  return c.rule && c.rule->max_dma_bytes ? c.rule->max_dma_bytes : policy.limits.max_dma_bytes_per_client;
}

void Daemon::Impl::check_queue_depth(const nvme::Controller& ctrl, uint32_t depth) const {
  uint32_t max_depth = std::min<uint32_t>({ctrl.cap().mqes() + 1u, policy.limits.max_queue_depth, 65536});
  if (depth < 2 || depth > max_depth)
    refuse(Errc::invalid_argument, fmt::format("queue depth {} outside 2..{} ({})", depth, max_depth,
                                               max_depth == ctrl.cap().mqes() + 1u ? "CAP.MQES" : "limits.max_queue_depth"));
}

void Daemon::Impl::check_queue_budget(const Client& c) const {
  if (c.queues.size() >= max_queues(c))
    refuse(Errc::no_memory, fmt::format("queue budget exhausted: this client holds {} of its {} queue pairs (rule '{}')",
                                        c.queues.size(), max_queues(c), c.rule->name));
  if (total_queues() >= policy.limits.max_queues_total)
    refuse(Errc::no_memory, fmt::format("queue budget exhausted: homid has granted {} of limits.max_queues_total = {}",
                                        total_queues(), policy.limits.max_queues_total));
}

// The device writes the CQ and reads the SQ: both must lie in memory this client
// registered on that controller, unless its rule trusts it with external memory.
void Daemon::Impl::check_queue_memory(const Client& c, const ManagedController& m, const wire::AllocQueue& r) const {
  if (r.flags & wire::kAllocExternalMemory) {
    if (!c.rule->external_queue_memory)
      refuse(Errc::invalid_argument, fmt::format("policy rule '{}' does not allow queues in unregistered memory "
                                                 "(external_queue_memory)", c.rule->name));
    return;
  }
  auto inside = [&](uint64_t bus, uint64_t len) {
    for (auto& reg : c.regions)
      if (reg.ctrl == r.ctrl && reg.dev.contains(bus, len)) return true;
    return false;
  };
  if (!inside(r.sq_bus, uint64_t(r.depth) * 64))
    refuse(Errc::invalid_argument, "the submission queue is not inside memory this client registered on " + m.name());
  if (!inside(r.cq_bus, uint64_t(r.depth) * 16))
    refuse(Errc::invalid_argument, "the completion queue is not inside memory this client registered on " + m.name());
}

void Daemon::Impl::check_dma_budget(const Client& c, uint64_t length) const {
  if (c.regions.size() >= policy.limits.max_regions_per_client)
    refuse(Errc::no_memory, fmt::format("this client already registered {} regions (limits.max_regions_per_client)",
                                        c.regions.size()));
  if (length > max_dma(c) || c.dma_bytes + length > max_dma(c))
    refuse(Errc::no_memory, fmt::format("DMA budget exhausted: {} + {} bytes exceed this client's {} (rule '{}')",
                                        c.dma_bytes, length, max_dma(c), c.rule->name));
}

uint16_t Daemon::Impl::in_use(uint32_t ctrl) const {
  size_t n = 0;
  for (auto& c : clients)
    for (auto& q : c.queues) n += q.ctrl == ctrl;
  return uint16_t(std::min<size_t>(n, UINT16_MAX));
}

size_t Daemon::Impl::total_queues() const {
  size_t n = 0;
  for (auto& c : clients) n += c.queues.size();
  return n;
}

}  // namespace aisio::homi
