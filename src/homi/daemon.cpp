// homid's life cycle: start/stop/reload, the service thread and its poll loop, client
// accept and drop, and the reclaim of what a dropped client held. Requests are handled
// in requests.cpp, the policy's decisions made in policy.cpp.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "homi/daemon_impl.hpp"
#include "homi/log.hpp"

namespace aisio::homi {

namespace {

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

}  // namespace

Daemon::Impl::Impl(DaemonConfig c) : cfg(std::move(c)), policy(cfg.policy) {
  std::random_device rd;
  instance = (uint64_t(rd()) << 32) ^ rd() ^ uint64_t(Clock::now().time_since_epoch().count());
  if (!instance) instance = 1;
}

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
  if (running) {
    stopping = true;
    uint64_t one = 1;
    if (write(wake_fd.get(), &one, sizeof one) < 0) { /* the thread polls again anyway */ }
    thread.join();
    std::lock_guard lk(mu);
    while (!clients.empty()) {
      drop(clients.front(), "daemon stopping");
      clients.pop_front();
    }
    unlink(cfg.socket.c_str());
    listen_fd.reset();
    wake_fd.reset();
  }
  // Also after a start() that failed half-way.
  sriov.reset();  // VFs disabled, secondary controllers offline
  ublk.reset();   // STOP_DEV (the kernel drains each disk), then DEL_DEV
  ctrls.clear();  // orderly shutdown of each controller
  if (running) log(Level::info, "stopped");
  running = false;
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
  const AccessRule* r = nullptr;
  try {
    r = &admit(c);
  } catch (const Error& e) {
    // The refusal goes to the client before its connection closes.
    log(Level::warn, "connection from pid {} uid {} gid {} refused: {}", c.cred.pid, c.cred.uid, c.cred.gid, e.what());
    try {
      send_packet(c.fd.get(), wire::encode(0, wire::ErrorReply{int32_t(e.code()), e.what()}), -1, true);
    } catch (const Error&) {
    }
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
