#include "homi/daemon.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <list>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "common/error.hpp"
#include "extents/device.hpp"
#include "extents/cache.hpp"
#include "homi/log.hpp"
#include "homi/managed.hpp"
#include "homi/sriov_service.hpp"
#include "homi/transport.hpp"
#include "homi/ublk/exports.hpp"
#include "homi/wire.hpp"

namespace aisio::homi {

namespace {

using Clock = std::chrono::steady_clock;
constexpr int MAX_PROTOCOL_ERRORS = 64;   // per connection, then it is dropped
constexpr uint32_t EXTENTS_PER_REPLY = 2000;  // 28 bytes each: well inside MAX_MESSAGE

uint64_t ms_since(Clock::time_point t) {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count());
}

void mkdir_parents(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return;
  std::string dir = path.substr(0, slash);
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i < dir.size() && dir[i] != '/') continue;
    std::string p = dir.substr(0, i);
    if (mkdir(p.c_str(), 0755) != 0 && errno != EEXIST) throw_errno("mkdir " + p);
  }
}

struct Queue {
  uint32_t ctrl = 0;
  uint16_t qid = 0;
  uint32_t depth = 0, nsid = 0, flags = 0;
  uint64_t sq_bus = 0, cq_bus = 0;
  Clock::time_point created;
};

struct Region {
  uint64_t id = 0;
  uint32_t ctrl = 0;
  DeviceRegion dev;
};

struct Client {
  Fd fd;
  uint64_t id = 0;
  ucred cred{};
  std::vector<uint32_t> groups;
  std::string name;
  std::optional<AccessRule> rule;
  bool hello = false;
  std::vector<Queue> queues;
  std::list<Region> regions;
  uint64_t dma_bytes = 0;
  uint64_t next_region = 1;
  uint64_t requests = 0, errors = 0;
  int protocol_errors = 0;
  Clock::time_point connected = Clock::now();

  std::string who() const {
    return fmt::format("client {} (pid {}, uid {}{}{})", id, cred.pid, cred.uid, name.empty() ? "" : ", ",
                       name);
  }
};

// A request refused with a reason for the client.
[[noreturn]] void refuse(Errc code, const std::string& text) { throw Error(code, text); }

}  // namespace

struct Daemon::Impl {
  explicit Impl(DaemonConfig c) : cfg(std::move(c)), policy(cfg.policy) {
    std::random_device rd;
    instance = (uint64_t(rd()) << 32) ^ rd() ^ uint64_t(Clock::now().time_since_epoch().count());
    if (!instance) instance = 1;
  }
  ~Impl() { stop(); }

  void start();
  void stop();
  void run();
  void apply_policy(Policy p);
  void accept_one();
  bool serve(Client& c);  // false: drop the client
  void drop(Client& c, const char* why);
  void reply(Client& c, uint32_t seq, const wire::Body& body, int fd = -1);
  void handle(Client& c, const wire::Message& m, std::vector<Fd>& fds);

  // Requests.
  wire::Body on_hello(Client& c, const wire::Hello& h);
  wire::Body on_list(Client& c);
  wire::Body on_identify(Client& c, const wire::Identify& r);
  void on_alloc(Client& c, uint32_t seq, const wire::AllocQueue& r);
  wire::Body on_release(Client& c, const wire::ReleaseQueue& r);
  wire::Body on_register(Client& c, const wire::RegisterDma& r, Fd fd);
  wire::Body on_unregister(Client& c, const wire::UnregisterDma& r);
  wire::Body on_resolve(Client& c, const wire::ResolveExtents& r, Fd fd);
  wire::Body on_stats(Client& c, const wire::Stats& r);

  ManagedController& controller_for(const Client& c, uint32_t index);
  uint32_t max_queues(const Client& c) const {
    return c.rule && c.rule->max_queues ? c.rule->max_queues : policy.limits.max_queues_per_client;
  }
  uint64_t max_dma(const Client& c) const {
    return c.rule && c.rule->max_dma_bytes ? c.rule->max_dma_bytes : policy.limits.max_dma_bytes_per_client;
  }
  uint16_t in_use(uint32_t ctrl) const {
    size_t n = 0;
    for (auto& c : clients)
      for (auto& q : c.queues) n += q.ctrl == ctrl;
    return uint16_t(std::min<size_t>(n, UINT16_MAX));
  }
  size_t total_queues() const {
    size_t n = 0;
    for (auto& c : clients) n += c.queues.size();
    return n;
  }
  void delete_queue(Client& c, const Queue& q);

  DaemonConfig cfg;
  Policy policy;  // service thread (and under mu)
  // FIEMAP results by (dev, ino) while the file's stamps hold: a client paging through a
  // large file's extents, or reading the same data set again, does not map it again.
  extents::ExtentCache extent_cache{{.fiemap = {.sync = true}}};
  uint64_t instance = 0;
  Clock::time_point started_at = Clock::now();
  std::vector<std::unique_ptr<ManagedController>> ctrls;
  std::unique_ptr<SriovService> sriov;  // sriov-pf controllers (indices after ctrls)
  std::unique_ptr<ublk::Exports> ublk;  // namespaces exported to the kernel; before ctrls go
  Fd listen_fd, wake_fd;
  std::thread thread;
  bool running = false;
  std::atomic<bool> stopping{false};

  mutable std::mutex mu;  // clients, counters, pending policy: held by the service thread while it works
  std::list<Client> clients;
  std::optional<Policy> pending;
  uint64_t next_client = 1;
  uint64_t accepted = 0;
  uint64_t reclaimed = 0;
  uint64_t policies_applied = 0;
};

// ---- Life cycle -------------------------------------------------------------------

void Daemon::Impl::start() {
  if (running) return;
  set_log_level(parse_level(policy.log_level));
  // Socket first: refuse to steal it from a live daemon (before touching any controller,
  // whose bring-up would reset it under the other daemon's clients); remove a stale one.
  const std::string& path = cfg.socket;
  mkdir_parents(path);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw Error(Errc::invalid_argument, "socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  {
    Fd probe(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (probe && connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
      throw Error(Errc::invalid_argument, "another homid is already listening on " + path);
  }
  for (size_t i = 0; i < cfg.controllers.size(); ++i) {
    const ControllerConfig& cc = cfg.controllers[i];
    ctrls.push_back(ManagedController::open(cc, uint32_t(i)));
    auto& c = ctrls.back()->ctrl();
    log(Level::info, "controller {} ({}): {} namespace(s), {} I/O queue pairs, DSTRD {}{}", cc.name, c.describe(),
        c.namespaces().size(), c.io_queue_limit(), c.cap().dstrd(),
        ctrls.back()->kind() == wire::Kind::soft ? " (doorbells page-isolated)" : " (doorbell page shared)");
  }
  if (!cfg.sriov_pfs.empty()) sriov = std::make_unique<SriovService>(cfg.sriov_pfs, uint32_t(ctrls.size()));
  {
    std::vector<ublk::Exports::Target> targets;
    for (size_t i = 0; i < ctrls.size(); ++i) targets.push_back({ctrls[i]->name(), &ctrls[i]->ctrl(), &cfg.controllers[i]});
    ublk = ublk::Exports::start(targets);  // their queue pairs are never granted to clients
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw Error(Errc::invalid_argument, path + " exists and is not a socket: not removing it");
    unlink(path.c_str());  // a stale socket of a daemon that is gone
  }
  listen_fd.reset(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listen_fd) throw_errno("socket");
  if (bind(listen_fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw_errno("bind " + path);
  if (chmod(path.c_str(), cfg.socket_mode) != 0) throw_errno("chmod " + path);
  if (cfg.socket_group && chown(path.c_str(), uid_t(-1), gid_t(*cfg.socket_group)) != 0)
    throw_errno("chgrp " + path);
  if (listen(listen_fd.get(), 128) != 0) throw_errno("listen " + path);
  wake_fd.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd) throw_errno("eventfd");
  stopping = false;
  thread = std::thread([this] { run(); });
  running = true;
  log(Level::info, "listening on {} (mode {:04o}), {} controller(s), {} rule(s), instance {:016x}", path,
      cfg.socket_mode, ctrls.size(), policy.rules.size(), instance);
}

void Daemon::Impl::stop() {
  if (!running) {
    sriov.reset();
    ublk.reset();
    ctrls.clear();
    return;
  }
  stopping = true;
  uint64_t one = 1;
  if (write(wake_fd.get(), &one, sizeof one) < 0) { /* the thread polls again anyway */ }
  thread.join();
  {
    std::lock_guard lk(mu);
    while (!clients.empty()) {
      drop(clients.front(), "daemon stopping");
      clients.pop_front();
    }
  }
  unlink(cfg.socket.c_str());
  listen_fd.reset();
  wake_fd.reset();
  sriov.reset();  // VFs disabled, secondary controllers offline
  ublk.reset();   // STOP_DEV (the kernel drains each disk), then DEL_DEV
  ctrls.clear();  // orderly shutdown of each controller
  running = false;
  log(Level::info, "stopped");
}

void Daemon::Impl::run() {
  std::vector<pollfd> fds;
  std::vector<Client*> order;
  while (!stopping.load()) {
    fds.clear();
    order.clear();
    fds.push_back({wake_fd.get(), POLLIN, 0});
    fds.push_back({listen_fd.get(), POLLIN, 0});
    {
      std::lock_guard lk(mu);
      for (auto& c : clients) {
        fds.push_back({c.fd.get(), POLLIN, 0});
        order.push_back(&c);
      }
    }
    int n = poll(fds.data(), fds.size(), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      log(Level::error, "poll: {}", std::strerror(errno));
      return;
    }
    std::lock_guard lk(mu);
    if (stopping.load()) return;
    for (size_t i = 0; i < order.size(); ++i) {
      short re = fds[i + 2].revents;
      if (!re) continue;
      Client* c = order[i];
      bool keep = true;
      if (re & POLLIN) {
        keep = serve(*c);
      } else if (re & (POLLHUP | POLLERR | POLLNVAL)) {
        keep = false;
      }
      if (!keep) {
        drop(*c, "connection closed");
        clients.remove_if([c](const Client& x) { return &x == c; });
      }
    }
    if (fds[1].revents & POLLIN) accept_one();
    // Last: a new policy may disconnect clients that `order` points to.
    if (fds[0].revents) {
      uint64_t v;
      if (read(wake_fd.get(), &v, sizeof v) < 0) { /* nonblocking: nothing pending */ }
      if (stopping.load()) return;
      if (pending) {
        Policy p = std::move(*pending);
        pending.reset();
        apply_policy(std::move(p));
        ++policies_applied;
      }
    }
  }
}

void Daemon::Impl::accept_one() {
  Fd fd(accept4(listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  if (!fd) return;
  Client c;
  c.fd = std::move(fd);
  socklen_t len = sizeof c.cred;
  if (getsockopt(c.fd.get(), SOL_SOCKET, SO_PEERCRED, &c.cred, &len) != 0) {
    log(Level::warn, "SO_PEERCRED: {}; connection refused", std::strerror(errno));
    return;
  }
  {
    gid_t g[256];
    socklen_t gl = sizeof g;
    if (getsockopt(c.fd.get(), SOL_SOCKET, SO_PEERGROUPS, g, &gl) == 0)
      for (size_t i = 0; i < gl / sizeof(gid_t); ++i) c.groups.push_back(uint32_t(g[i]));
  }
  ++accepted;
  c.id = next_client++;
  auto refuse_now = [&](Errc code, const std::string& why) {
    log(Level::warn, "connection from pid {} uid {} gid {} refused: {}", c.cred.pid, c.cred.uid, c.cred.gid, why);
    try {
      send_packet(c.fd.get(), wire::encode(0, wire::ErrorReply{int32_t(code), why}), -1, true);
    } catch (const Error&) {
    }
  };
  if (clients.size() >= policy.limits.max_clients) {
    refuse_now(Errc::no_memory, fmt::format("homid serves at most {} clients (limits.max_clients)",
                                            policy.limits.max_clients));
    return;
  }
  const AccessRule* r = policy.match(c.cred.uid, c.cred.gid, c.groups);
  if (!r) {
    refuse_now(Errc::invalid_argument, fmt::format("uid {} gid {} is not admitted by any [[allow]] rule of homid's policy",
                                                   c.cred.uid, c.cred.gid));
    return;
  }
  c.rule = *r;
  log(Level::debug, "client {} connected: pid {} uid {} gid {} (rule '{}')", c.id, c.cred.pid, c.cred.uid, c.cred.gid,
      r->name);
  clients.push_back(std::move(c));
}

void Daemon::Impl::delete_queue(Client& c, const Queue& q) {
  ManagedController& m = *ctrls[q.ctrl];
  try {
    m.ctrl().delete_io_queue_at(q.qid);  // Delete I/O SQ, then CQ
  } catch (const std::exception& e) {
    log(Level::error, "{}: deleting queue {} of {}: {}", m.name(), q.qid, c.who(), e.what());
  }
  m.revoke_doorbells(q.qid);
}

void Daemon::Impl::drop(Client& c, const char* why) {
  size_t nq = c.queues.size(), nr = c.regions.size();
  if (sriov && sriov->held_by(c.id)) {
    log(Level::info, "{} gone ({}): resetting its VF(s)", c.who(), why);
    sriov->release_client(c.id);  // FLR: the VF stops its DMA before anyone else gets it
  }
  // Queues first: once they are deleted no DMA can target the client's memory.
  for (auto& q : c.queues) delete_queue(c, q);
  reclaimed += nq;
  c.queues.clear();
  c.regions.clear();  // unmapped from the device, then from homid
  c.dma_bytes = 0;
  c.fd.reset();
  if (nq || nr)
    log(Level::info, "{} gone ({}): reclaimed {} queue(s), {} DMA region(s)", c.who(), why, nq, nr);
  else
    log(Level::debug, "{} gone ({})", c.who(), why);
}

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

// ---- Requests ---------------------------------------------------------------------

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
    try {
      reply(c, seq, wire::ErrorReply{int32_t(e.code()), e.what()});
      return true;
    } catch (const Error&) {
      return false;
    }
  } catch (const std::exception& e) {
    ++c.errors;
    log(Level::error, "{}: internal error: {}", c.who(), e.what());
    try {
      reply(c, seq, wire::ErrorReply{int32_t(Errc::system), std::string("homid internal error: ") + e.what()});
      return true;
    } catch (const Error&) {
      return false;
    }
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
    case wire::Type::list_functions: out = sriov ? sriov->list(*c.rule) : wire::ListFunctionsOk{}; break;
    case wire::Type::grant_function: {
      if (!sriov) refuse(Errc::not_supported, "grant_function: no sriov-pf controller is configured");
      auto [ok, fd] = sriov->grant(c.id, *c.rule, std::get<wire::GrantFunction>(m.body));
      reply(c, seq, ok, fd.get());
      return;
    }
    case wire::Type::release_function:
      if (!sriov) refuse(Errc::not_supported, "release_function: no sriov-pf controller is configured");
      sriov->release(c.id, std::get<wire::ReleaseFunction>(m.body));
      out = wire::ReleaseFunctionOk{};
      break;
    default:
      refuse(Errc::protocol, std::string("homi protocol: ") + wire::type_name(t) + " is not a request");
  }
  reply(c, seq, *out);
}

ManagedController& Daemon::Impl::controller_for(const Client& c, uint32_t index) {
  if (index >= ctrls.size())
    refuse(Errc::invalid_argument, fmt::format("no controller {} (homid has {})", index, ctrls.size()));
  ManagedController& m = *ctrls[index];
  if (!c.rule->allows_controller(m.name()))
    refuse(Errc::invalid_argument, fmt::format("policy rule '{}' does not allow controller '{}'", c.rule->name, m.name()));
  return m;
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
  uint32_t max_depth = std::min<uint32_t>({ctrl.cap().mqes() + 1u, policy.limits.max_queue_depth, 65536});
  if (r.depth < 2 || r.depth > max_depth)
    refuse(Errc::invalid_argument, fmt::format("queue depth {} outside 2..{} ({})", r.depth, max_depth,
                                               max_depth == ctrl.cap().mqes() + 1u ? "CAP.MQES" : "limits.max_queue_depth"));
  if (r.nsid) ctrl.ns(r.nsid);  // throws for an inactive namespace
  if (c.queues.size() >= max_queues(c))
    refuse(Errc::no_memory, fmt::format("queue budget exhausted: this client holds {} of its {} queue pairs (rule '{}')",
                                        c.queues.size(), max_queues(c), c.rule->name));
  if (total_queues() >= policy.limits.max_queues_total)
    refuse(Errc::no_memory, fmt::format("queue budget exhausted: homid has granted {} of limits.max_queues_total = {}",
                                        total_queues(), policy.limits.max_queues_total));
  if (m.fatal()) refuse(Errc::controller_fatal, m.name() + ": the controller is in a fatal state (CSTS.CFS)");
  uint64_t page = ctrl.page_size();
  if (r.sq_bus % page || r.cq_bus % page)
    refuse(Errc::invalid_argument, fmt::format("queue memory must be aligned to the controller page ({} bytes)", page));
  if (r.flags & wire::kAllocExternalMemory) {
    if (!c.rule->external_queue_memory)
      refuse(Errc::invalid_argument, fmt::format("policy rule '{}' does not allow queues in unregistered memory "
                                                 "(external_queue_memory)", c.rule->name));
  } else {
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
  uint16_t qid;
  try {
    qid = ctrl.create_io_queue_at(r.depth, r.sq_bus, r.cq_bus);
  } catch (const Error& e) {
    if (e.code() == Errc::no_memory)
      refuse(Errc::no_memory, std::string("queue budget exhausted: ") + e.what());
    throw;
  }
  Queue q{r.ctrl, qid, r.depth, r.nsid, r.flags, r.sq_bus, r.cq_bus, Clock::now()};
  DoorbellGrant g;
  try {
    g = m.grant_doorbells(qid);
  } catch (...) {
    ctrl.delete_io_queue_at(qid);
    throw;
  }
  c.queues.push_back(q);  // from here on, a failed reply drops the client (and deletes the queue)
  wire::AllocQueueOk ok;
  ok.qid = qid;
  ok.depth = r.depth;
  ok.flags = g.isolated ? uint32_t(wire::kGrantIsolated) : 0u;
  ok.map_offset = g.map_offset;
  ok.map_length = g.map_length;
  ok.sq_doorbell = g.sq;
  ok.cq_doorbell = g.cq;
  log(Level::debug, "{}: queue {} on {} (depth {})", c.who(), qid, m.name(), r.depth);
  try {
    reply(c, seq, ok, g.fd.get());
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
  if (c.regions.size() >= policy.limits.max_regions_per_client)
    refuse(Errc::no_memory, fmt::format("this client already registered {} regions (limits.max_regions_per_client)",
                                        c.regions.size()));
  if (r.length > max_dma(c) || c.dma_bytes + r.length > max_dma(c))
    refuse(Errc::no_memory, fmt::format("DMA budget exhausted: {} + {} bytes exceed this client's {} (rule '{}')",
                                        c.dma_bytes, r.length, max_dma(c), c.rule->name));
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
  std::optional<BackingMatch> match;
  uint32_t owner_index = 0;
  std::string owner_name;
  // A file system on a namespace homid exports through ublk: identity mapping.
  if (auto u = ublk ? ublk->match_disk(bd.disk) : std::nullopt; u && c.rule->allows_controller(ctrls[u->first]->name())) {
    auto& m = *ctrls[u->first];
    owner_index = m.index();
    owner_name = m.name();
    match = BackingMatch{u->second, m.ctrl().ns(u->second).lba_size, bd.partition ? bd.partition_start : 0};
  }
  for (auto& m : ctrls) {
    if (match) break;
    if (!c.rule->allows_controller(m->name())) continue;
    if ((match = m->match_backing(bd))) {
      owner_index = m->index();
      owner_name = m->name();
      break;
    }
  }
  if (!match && sriov)
    if (auto s = sriov->match_backing(*c.rule, bd)) {
      match = s->at;  // the PF's namespace: its VFs see the same LBAs
      owner_index = s->index;
      owner_name = s->name;
    }
  if (!match)
    refuse(Errc::invalid_argument,
           fmt::format("resolve_extents: {} lives on {} ({}:{}), which backs no namespace homid manages for this client",
                       path, bd.name, bd.major, bd.minor));
  // The cache maps with FIEMAP_FLAG_SYNC and keeps an entry only while the file's stamps
  // (size, mtime, ctime, blocks) are unchanged, i.e. while no write has dirtied it since
  // it was written back: kResolveSync holds for every answer, asked for or not.
  auto cached = extent_cache.get(fd.get(), path);
  const extents::FileExtents& fx = *cached;
  wire::ResolveExtentsOk ok;
  ok.ctrl = owner_index;
  ok.nsid = match->nsid;
  ok.lba_size = match->lba_size;
  ok.file_size = fx.size;
  ok.device_offset = match->device_offset;
  ok.total = fx.extents.size();
  ok.path = path.substr(0, wire::MAX_STRING);
  uint32_t max = r.max ? std::min(r.max, EXTENTS_PER_REPLY) : EXTENTS_PER_REPLY;
  for (uint64_t i = r.first; i < fx.extents.size() && ok.extents.size() < max; ++i) {
    const auto& e = fx.extents[i];
    wire::ExtentRecord rec{e.logical, 0, e.length, e.flags};
    if (!e.reads_as_zeros()) rec.physical = e.physical + match->device_offset;
    ok.extents.push_back(rec);
  }
  log(Level::debug, "{}: resolved {} ({} extents) on {} ns {}", c.who(), path, fx.extents.size(), owner_name,
      match->nsid);
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
      ok.queues.push_back(wire::QueueStat{x.id, q.ctrl, q.qid, q.depth, q.nsid, q.flags, ms_since(q.created)});
  }
  for (auto& m : ctrls)
    if (c.rule->allows_controller(m->name())) ok.controllers.push_back(m->stat(in_use(m->index())));
  if (ublk)
    for (auto& x : ublk->status())
      if (c.rule->allows_controller(x.ctrl_name)) ok.ublk.push_back(ublk::wire_stat(x));
  return ok;
}

// ---- Public -----------------------------------------------------------------------

Daemon::Daemon(DaemonConfig cfg) : impl_(std::make_unique<Impl>(std::move(cfg))) {}
Daemon::~Daemon() = default;
void Daemon::start() { impl_->start(); }
void Daemon::stop() { impl_->stop(); }
const std::string& Daemon::socket_path() const { return impl_->cfg.socket; }
uint64_t Daemon::instance() const { return impl_->instance; }

void Daemon::reload(Policy p) {
  if (!impl_->running) {
    impl_->policy = std::move(p);
    return;
  }
  {
    std::lock_guard lk(impl_->mu);
    impl_->pending = std::move(p);
  }
  uint64_t one = 1;
  if (impl_->wake_fd && write(impl_->wake_fd.get(), &one, sizeof one) < 0) { /* applied on the next wakeup */ }
}

Daemon::Snapshot Daemon::snapshot() const {
  std::lock_guard lk(impl_->mu);
  Snapshot s;
  s.clients = impl_->clients.size();
  s.queues = impl_->total_queues();
  s.reclaimed_queues = impl_->reclaimed;
  s.accepted = impl_->accepted;
  auto cs = impl_->extent_cache.stats();  // its own lock
  s.extent_cache_hits = cs.hits;
  s.extent_cache_misses = cs.misses + cs.invalidations;
  s.policies_applied = impl_->policies_applied;
  return s;
}

}  // namespace aisio::homi
