// homid's requests: the serve/reply path of one client message and one handler per
// request type (protocol.md). Every handler runs on the service thread under mu; a
// refusal is an Error thrown to serve(), which answers it with an error reply.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "extents/device.hpp"
#include "homi/daemon_impl.hpp"
#include "homi/log.hpp"

namespace aisio::homi {

namespace {

constexpr int MAX_PROTOCOL_ERRORS = 64;   // per connection, then it is dropped
constexpr uint32_t EXTENTS_PER_REPLY = 2000;  // 28 bytes each: well inside MAX_MESSAGE

using Clock = std::chrono::steady_clock;  // Daemon::Impl::Clock

uint64_t ms_since(Clock::time_point t) {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count());
}

}  // namespace

void Daemon::Impl::reply(Client& c, uint32_t seq, const wire::Body& body, int fd) {
  // Non-blocking: a client that does not read its replies is dropped, not waited for.
  send_packet(c.fd.get(), wire::encode(seq, body), fd, true);
}

bool Daemon::Impl::serve(Client& c) {
  Packet p;
  try {
    RecvResult r = recv_packet(c.fd.get(), p, true);
    if (r == RecvResult::closed) return false;
    if (r == RecvResult::again) return true;
  } catch (const Error& e) {
    log(Level::debug, "{}: {}", c.who(), e.what());
    return false;
  }
  ++c.requests;
  wire::Header h{};
  bool have_header = wire::peek_header(p.bytes, h);
  uint32_t seq = have_header ? h.seq : 0;
  wire::ErrorReply refusal;
  try {
    if (p.truncated)
      refuse(Errc::protocol, fmt::format("homi protocol: message larger than {} bytes (or too many descriptors)",
                                         wire::MAX_MESSAGE));
    wire::Message m = wire::decode(p.bytes, unsigned(p.fds.size()));
    handle(c, m, p.fds);
    return true;
  } catch (const Error& e) {
    ++c.errors;
    if (e.code() == Errc::protocol && ++c.protocol_errors > MAX_PROTOCOL_ERRORS) {
      log(Level::warn, "{}: too many malformed messages; disconnecting", c.who());
      return false;
    }
    log(e.code() == Errc::protocol ? Level::info : Level::debug, "{}: refused: {}", c.who(), e.what());
    refusal = wire::ErrorReply{int32_t(e.code()), e.what()};
  } catch (const std::exception& e) {
    ++c.errors;
    log(Level::error, "{}: internal error: {}", c.who(), e.what());
    refusal = wire::ErrorReply{int32_t(Errc::system), std::string("homid internal error: ") + e.what()};
  }
  try {
    reply(c, seq, refusal);
    return true;
  } catch (const Error&) {
    return false;  // the client does not read its replies
  }
}

void Daemon::Impl::handle(Client& c, const wire::Message& m, std::vector<Fd>& fds) {
  uint32_t seq = m.header.seq;
  wire::Type t = wire::Type(m.header.type);
  if (!c.hello && t != wire::Type::hello) refuse(Errc::protocol, "homi protocol: the first request must be hello");
  std::optional<wire::Body> out;
  switch (t) {
    case wire::Type::hello: out = on_hello(c, std::get<wire::Hello>(m.body)); break;
    case wire::Type::list_controllers: out = on_list(c); break;
    case wire::Type::identify: out = on_identify(c, std::get<wire::Identify>(m.body)); break;
    case wire::Type::alloc_queue: on_alloc(c, seq, std::get<wire::AllocQueue>(m.body)); return;
    case wire::Type::release_queue: out = on_release(c, std::get<wire::ReleaseQueue>(m.body)); break;
    case wire::Type::register_dma: out = on_register(c, std::get<wire::RegisterDma>(m.body), std::move(fds.at(0))); break;
    case wire::Type::unregister_dma: out = on_unregister(c, std::get<wire::UnregisterDma>(m.body)); break;
    case wire::Type::resolve_extents:
      out = on_resolve(c, std::get<wire::ResolveExtents>(m.body), std::move(fds.at(0)));
      break;
    case wire::Type::stats: out = on_stats(c, std::get<wire::Stats>(m.body)); break;
    case wire::Type::list_functions: out = on_list_functions(c); break;
    case wire::Type::grant_function: on_grant_function(c, seq, std::get<wire::GrantFunction>(m.body)); return;
    case wire::Type::release_function: out = on_release_function(c, std::get<wire::ReleaseFunction>(m.body)); break;
    default:
      refuse(Errc::protocol, std::string("homi protocol: ") + wire::type_name(t) + " is not a request");
  }
  reply(c, seq, *out);
}

wire::Body Daemon::Impl::on_hello(Client& c, const wire::Hello& h) {
  if (c.hello) refuse(Errc::protocol, "homi protocol: hello sent twice");
  if (h.min_version > wire::VERSION || h.max_version < wire::VERSION || h.min_version > h.max_version)
    refuse(Errc::not_supported, fmt::format("homid speaks protocol version {}; the client asked for {}..{}",
                                            wire::VERSION, h.min_version, h.max_version));
  c.hello = true;
  c.name = h.client.substr(0, 64);
  wire::HelloOk ok;
  ok.instance = instance;
  ok.uid = c.cred.uid;
  ok.gid = c.cred.gid;
  ok.pid = uint32_t(c.cred.pid);
  ok.client_id = c.id;
  ok.max_queues = max_queues(c);
  ok.max_dma_bytes = max_dma(c);
  ok.daemon = "homid 0.1.0";
  log(Level::info, "{} said hello (rule '{}')", c.who(), c.rule->name);
  return ok;
}

wire::Body Daemon::Impl::on_list(Client& c) {
  wire::ListControllersOk ok;
  for (auto& m : ctrls)
    if (c.rule->allows_controller(m->name())) ok.controllers.push_back(m->info(in_use(m->index())));
  return ok;
}

wire::Body Daemon::Impl::on_identify(Client& c, const wire::Identify& r) {
  ManagedController& m = controller_for(c, r.ctrl);
  wire::IdentifyOk ok;
  ok.data.resize(wire::IDENTIFY_BYTES);
  if (r.cns == 1) {
    static_assert(sizeof(nvme::IdentifyController) == wire::IDENTIFY_BYTES);
    std::memcpy(ok.data.data(), &m.ctrl().id(), wire::IDENTIFY_BYTES);
  } else if (r.cns == 0) {
    static_assert(sizeof(nvme::IdentifyNamespace) == wire::IDENTIFY_BYTES);
    std::memcpy(ok.data.data(), m.ctrl().ns(r.nsid).id.get(), wire::IDENTIFY_BYTES);
  } else {
    refuse(Errc::not_supported, fmt::format("identify: CNS {} is not served (0: namespace, 1: controller)", r.cns));
  }
  return ok;
}

void Daemon::Impl::on_alloc(Client& c, uint32_t seq, const wire::AllocQueue& r) {
  ManagedController& m = controller_for(c, r.ctrl);
  nvme::Controller& ctrl = m.ctrl();
  check_queue_depth(ctrl, r.depth);
  if (r.nsid) ctrl.ns(r.nsid);  // throws for an inactive namespace
  check_queue_budget(c);
  if (m.fatal()) refuse(Errc::controller_fatal, m.name() + ": the controller is in a fatal state (CSTS.CFS)");
  uint64_t page = ctrl.page_size();
  if (r.sq_bus % page || r.cq_bus % page)
    refuse(Errc::invalid_argument, fmt::format("queue memory must be aligned to the controller page ({} bytes)", page));
  check_queue_memory(c, m, r);
  uint16_t qid;
  try {
    qid = ctrl.create_io_queue_at(r.depth, r.sq_bus, r.cq_bus);
  } catch (const Error& e) {
    if (e.code() == Errc::no_memory)
      refuse(Errc::no_memory, std::string("queue budget exhausted: ") + e.what());
    throw;
  }
  Queue q{r.ctrl, qid, r.depth, r.nsid, r.flags, r.sq_bus, r.cq_bus, Clock::now(), r.gpu};
  wire::AllocQueueOk ok;
  ok.qid = qid;
  ok.depth = r.depth;
  if (r.flags & wire::kAllocGpu) {  // the grant carries the GPU it is accounted to
    ok.flags |= wire::kGrantGpu;
    ok.gpu = r.gpu;
  }
  Fd fd;
  try {
    fd = m.grant_doorbells(qid, ok);
  } catch (...) {
    ctrl.delete_io_queue_at(qid);
    throw;
  }
  c.queues.push_back(q);  // from here on, a failed reply drops the client (and deletes the queue)
  log(Level::debug, "{}: queue {} on {} (depth {}{})", c.who(), qid, m.name(), r.depth,
      r.flags & wire::kAllocGpu ? fmt::format(", GPU {}", r.gpu) : "");
  try {
    reply(c, seq, ok, fd.get());
  } catch (const Error&) {
    throw Error(Errc::system, "reply lost");  // serve() fails to send the error too and drops the client
  }
}

wire::Body Daemon::Impl::on_release(Client& c, const wire::ReleaseQueue& r) {
  auto it = std::find_if(c.queues.begin(), c.queues.end(),
                         [&](const Queue& q) { return q.ctrl == r.ctrl && q.qid == r.qid; });
  if (it == c.queues.end())
    refuse(Errc::invalid_argument, fmt::format("queue {} on controller {} is not one of this client's", r.qid, r.ctrl));
  Queue q = *it;
  c.queues.erase(it);
  delete_queue(c, q);
  log(Level::debug, "{}: released queue {}", c.who(), q.qid);
  return wire::ReleaseQueueOk{};
}

wire::Body Daemon::Impl::on_register(Client& c, const wire::RegisterDma& r, Fd fd) {
  ManagedController& m = controller_for(c, r.ctrl);
  check_dma_budget(c, r.length);
  Region reg;
  reg.id = c.next_region++;
  reg.ctrl = r.ctrl;
  reg.dev = m.register_memory(std::move(fd), r.length);
  wire::RegisterDmaOk ok;
  ok.region = reg.id;
  ok.page_shift = reg.dev.page_shift;
  ok.bus = reg.dev.bus;
  c.dma_bytes += r.length;
  c.regions.push_back(std::move(reg));
  return ok;
}

wire::Body Daemon::Impl::on_unregister(Client& c, const wire::UnregisterDma& r) {
  auto it = std::find_if(c.regions.begin(), c.regions.end(),
                         [&](const Region& x) { return x.id == r.region && x.ctrl == r.ctrl; });
  if (it == c.regions.end())
    refuse(Errc::invalid_argument, fmt::format("region {} on controller {} is not one of this client's", r.region, r.ctrl));
  for (auto& q : c.queues)
    if (q.ctrl == r.ctrl && !(q.flags & wire::kAllocExternalMemory) &&
        (it->dev.contains(q.sq_bus, uint64_t(q.depth) * 64) || it->dev.contains(q.cq_bus, uint64_t(q.depth) * 16)))
      refuse(Errc::invalid_argument, fmt::format("region {} holds queue {}: release the queue first", r.region, q.qid));
  c.dma_bytes -= it->dev.length;
  c.regions.erase(it);
  return wire::UnregisterDmaOk{};
}

wire::Body Daemon::Impl::on_resolve(Client& c, const wire::ResolveExtents& r, Fd fd) {
  // Holding an open, readable descriptor of the file is the authorisation; the policy
  // then limits which files (dataset roots) and which namespaces.
  int fl = fcntl(fd.get(), F_GETFL);
  if (fl < 0) throw_errno("fcntl on the client's descriptor");
  if (fl & O_PATH) refuse(Errc::invalid_argument, "resolve_extents: an O_PATH descriptor does not prove read access");
  if ((fl & O_ACCMODE) == O_WRONLY) refuse(Errc::invalid_argument, "resolve_extents: the descriptor is not open for reading");
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) throw_errno("fstat the client's descriptor");
  if (!S_ISREG(st.st_mode)) refuse(Errc::invalid_argument, "resolve_extents: not a regular file");
  char buf[4096];
  std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
  ssize_t n = readlink(proc.c_str(), buf, sizeof buf - 1);
  if (n < 0) throw_errno("readlink " + proc);
  std::string path(buf, size_t(n));
  if (!c.rule->allows_path(path))
    refuse(Errc::invalid_argument,
           fmt::format("resolve_extents: {} is not under a dataset root of policy rule '{}'", path, c.rule->name));
  extents::BlockDevice bd;
  try {
    bd = extents::backing_device(fd.get());
  } catch (const Error& e) {
    refuse(Errc::invalid_argument,
           fmt::format("resolve_extents: {} is not on a namespace homid manages ({})", path, e.what()));
  }
  std::optional<BackingOwner> owner;
  // A file system on a namespace homid exports through ublk: identity mapping.
  if (auto u = ublk ? ublk->match_disk(bd.disk) : std::nullopt; u && c.rule->allows_controller(ctrls[u->first]->name())) {
    auto& m = *ctrls[u->first];
    owner = BackingOwner{m.index(), m.name(),
                         BackingMatch{u->second, m.ctrl().ns(u->second).lba_size, bd.partition ? bd.partition_start : 0}};
  }
  for (auto& m : ctrls) {
    if (owner) break;
    if (!c.rule->allows_controller(m->name())) continue;
    if (auto at = m->match_backing(bd)) owner = BackingOwner{m->index(), m->name(), *at};
  }
  // The PF's namespace: its VFs see the same LBAs.
  if (!owner && sriov) owner = sriov->match_backing(*c.rule, bd);
  if (!owner)
    refuse(Errc::invalid_argument,
           fmt::format("resolve_extents: {} lives on {} ({}:{}), which backs no namespace homid manages for this client",
                       path, bd.name, bd.major, bd.minor));
  const BackingMatch& match = owner->at;
  // The cache maps with FIEMAP_FLAG_SYNC and keeps an entry only while the file's stamps
  // (size, mtime, ctime, blocks) are unchanged, i.e. while no write has dirtied it since
  // it was written back: kResolveSync holds for every answer, asked for or not.
  auto cached = extent_cache.get(fd.get(), path);
  const extents::FileExtents& fx = *cached;
  wire::ResolveExtentsOk ok;
  ok.ctrl = owner->index;
  ok.nsid = match.nsid;
  ok.lba_size = match.lba_size;
  ok.file_size = fx.size;
  ok.device_offset = match.device_offset;
  ok.total = fx.extents.size();
  ok.path = path.substr(0, wire::MAX_STRING);
  uint32_t max = r.max ? std::min(r.max, EXTENTS_PER_REPLY) : EXTENTS_PER_REPLY;
  for (uint64_t i = r.first; i < fx.extents.size() && ok.extents.size() < max; ++i) {
    const auto& e = fx.extents[i];
    wire::ExtentRecord rec{e.logical, 0, e.length, e.flags};
    if (!e.reads_as_zeros()) rec.physical = e.physical + match.device_offset;
    ok.extents.push_back(rec);
  }
  log(Level::debug, "{}: resolved {} ({} extents) on {} ns {}", c.who(), path, fx.extents.size(), owner->name,
      match.nsid);
  return ok;
}

wire::Body Daemon::Impl::on_stats(Client& c, const wire::Stats& r) {
  bool all = (r.flags & wire::kStatsAll) && c.rule->admin;
  wire::StatsOk ok;
  ok.instance = instance;
  ok.uptime_ms = ms_since(started_at);
  ok.queues_total = uint32_t(total_queues());
  ok.max_queues_total = policy.limits.max_queues_total;
  ok.clients_total = accepted;
  ok.reclaimed_queues = reclaimed;
  for (auto& x : clients) {
    if (!all && &x != &c) continue;
    wire::ClientStat s;
    s.id = x.id;
    s.pid = uint32_t(x.cred.pid);
    s.uid = x.cred.uid;
    s.gid = x.cred.gid;
    s.name = x.name;
    s.rule = x.rule ? x.rule->name : "";
    s.queues = uint32_t(x.queues.size());
    s.regions = uint32_t(x.regions.size());
    s.dma_bytes = x.dma_bytes;
    s.requests = x.requests;
    s.errors = x.errors;
    s.connected_ms = ms_since(x.connected);
    ok.clients.push_back(std::move(s));
    for (auto& q : x.queues)
      ok.queues.push_back(
          wire::QueueStat{x.id, q.ctrl, q.qid, q.depth, q.nsid, q.flags, ms_since(q.created), q.gpu});
  }
  for (auto& m : ctrls)
    if (c.rule->allows_controller(m->name())) ok.controllers.push_back(m->stat(in_use(m->index())));
  if (ublk) ok.ublk = ublk->stats(*c.rule);
  return ok;
}

wire::Body Daemon::Impl::on_list_functions(Client& c) {
  return sriov ? sriov->list(*c.rule) : wire::ListFunctionsOk{};
}

void Daemon::Impl::on_grant_function(Client& c, uint32_t seq, const wire::GrantFunction& r) {
  if (!sriov) refuse(Errc::not_supported, "grant_function: no sriov-pf controller is configured");
  auto [ok, fd] = sriov->grant(c.id, *c.rule, r);
  reply(c, seq, ok, fd.get());
}

wire::Body Daemon::Impl::on_release_function(Client& c, const wire::ReleaseFunction& r) {
  if (!sriov) refuse(Errc::not_supported, "release_function: no sriov-pf controller is configured");
  sriov->release(c.id, r);
  return wire::ReleaseFunctionOk{};
}

}  // namespace aisio::homi
