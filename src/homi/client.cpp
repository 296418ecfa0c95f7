#include "homi/client.hpp"

#include <fcntl.h>
#include <linux/memfd.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <thread>

namespace aisio::homic {

using homi::Fd;

std::string default_socket() {
  const char* s = std::getenv("HOMID_SOCKET");
  return s && *s ? s : "/run/homid/homid.sock";
}

namespace {

std::string process_name() {
  std::ifstream in("/proc/self/comm");
  std::string s;
  std::getline(in, s);
  return s.empty() ? "client" : s;
}

Errc errc_from(int32_t v) {
  if (v < 0 || v > int32_t(Errc::io)) return Errc::protocol;
  return Errc(v);
}

constexpr size_t PAGE = 4096;
constexpr size_t HUGE_PAGE = size_t(2) << 20;

}  // namespace

// ---- Client -----------------------------------------------------------------------

std::shared_ptr<Client> Client::connect(const std::string& socket, const ConnectOptions& opt) {
  std::shared_ptr<Client> c(new Client());
  c->path_ = socket;
  auto deadline = std::chrono::steady_clock::now() + opt.wait;
  for (;;) {
    try {
      c->fd_ = homi::connect_unix(socket);
      break;
    } catch (const Error& e) {
      if (e.code() != Errc::system || std::chrono::steady_clock::now() >= deadline) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  wire::Hello h;
  h.pid = uint32_t(getpid());
  h.client = opt.name.empty() ? process_name() : opt.name;
  c->hello_ = c->call<wire::HelloOk>(h);
  return c;
}

Client::~Client() = default;

bool Client::connected() const {
  if (lost_) return false;
  pollfd p{fd_.get(), POLLRDHUP, 0};
  if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL))) lost_ = true;
  return !lost_;
}

Reply Client::exchange(const std::vector<uint8_t>& bytes, uint32_t seq, int fd) {
  auto gone = [&]() -> Disconnected {
    lost_ = true;
    return Disconnected("homid at " + path_ + " closed the connection (the daemon stopped or restarted): connect again");
  };
  // A daemon that refuses a connection (policy, too many clients) sends one error and
  // closes: surface that error rather than "connection closed".
  auto refusal = [&]() -> std::optional<Error> {
    homi::Packet p;
    try {
      if (homi::recv_packet(fd_.get(), p, true) != homi::RecvResult::ok || p.truncated) return std::nullopt;
      wire::Message m = wire::decode(p.bytes, unsigned(p.fds.size()));
      if (auto* e = std::get_if<wire::ErrorReply>(&m.body)) return Error(errc_from(e->errc), "homid: " + e->text);
    } catch (const Error&) {
    }
    return std::nullopt;
  };
  if (lost_) throw gone();
  if (int e = homi::send_packet_errno(fd_.get(), bytes, fd)) {
    if (e == EPIPE || e == ECONNRESET || e == ENOTCONN) {
      if (auto r = refusal()) {
        lost_ = true;
        throw *r;
      }
      throw gone();
    }
    throw_errno("send to homid", e);
  }
  homi::Packet p;
  if (homi::recv_packet(fd_.get(), p) != homi::RecvResult::ok) throw gone();
  if (p.truncated) throw Error(Errc::protocol, "homid reply larger than the protocol allows");
  Reply r;
  r.msg = wire::decode(p.bytes, unsigned(p.fds.size()));  // throws Error(protocol)
  if (!p.fds.empty()) r.fd = std::move(p.fds.front());
  if (auto* e = std::get_if<wire::ErrorReply>(&r.msg.body)) {
    if (r.msg.header.seq == seq || r.msg.header.seq == 0) throw Error(errc_from(e->errc), "homid: " + e->text);
  }
  if (r.msg.header.seq != seq) throw Error(Errc::protocol, "homid reply out of sequence");
  return r;
}

Reply Client::request(const wire::Body& body, int fd) {
  std::lock_guard lk(mu_);
  uint32_t seq = ++seq_;
  if (seq == 0) seq = ++seq_;  // 0 marks unsolicited errors
  return exchange(wire::encode(seq, body), seq, fd);
}

Reply Client::request_raw(const std::vector<uint8_t>& bytes, int fd) {
  std::lock_guard lk(mu_);
  wire::Header h{};
  uint32_t seq = wire::peek_header(bytes, h) ? h.seq : 0;
  return exchange(bytes, seq, fd);
}

template <class T>
T Client::call(const wire::Body& body, int fd) {
  Reply r = request(body, fd);
  if (auto* v = std::get_if<T>(&r.msg.body)) return std::move(*v);
  throw Error(Errc::protocol, std::string("homid answered ") + wire::type_name(wire::type_of(r.msg.body)) +
                                  " to " + wire::type_name(wire::type_of(body)));
}

std::vector<wire::ControllerInfo> Client::controllers() {
  return call<wire::ListControllersOk>(wire::ListControllers{}).controllers;
}

wire::ControllerInfo Client::controller(const std::string& key) {
  auto all = controllers();
  std::string names;
  for (auto& c : all) {
    if (c.name == key || std::to_string(c.index) == key) return c;
    names += (names.empty() ? "" : ", ") + c.name;
  }
  throw Error(Errc::invalid_argument,
              "homid has no controller '" + key + "' for this client (available: " + (names.empty() ? "none" : names) + ")");
}

std::vector<uint8_t> Client::identify(uint32_t ctrl, uint8_t cns, uint32_t nsid) {
  return call<wire::IdentifyOk>(wire::Identify{ctrl, cns, nsid}).data;
}

Client::QueueGrant Client::alloc_queue(const wire::AllocQueue& req) {
  Reply r = request(req);
  auto* ok = std::get_if<wire::AllocQueueOk>(&r.msg.body);
  if (!ok || !r.fd) throw Error(Errc::protocol, "bad alloc_queue reply from homid");
  return QueueGrant{*ok, std::move(r.fd)};
}

void Client::release_queue(uint32_t ctrl, uint16_t qid) { call<wire::ReleaseQueueOk>(wire::ReleaseQueue{ctrl, qid}); }

wire::RegisterDmaOk Client::register_dma(uint32_t ctrl, int memfd, uint64_t len) {
  return call<wire::RegisterDmaOk>(wire::RegisterDma{ctrl, len}, memfd);
}

void Client::unregister_dma(uint32_t ctrl, uint64_t region) {
  call<wire::UnregisterDmaOk>(wire::UnregisterDma{ctrl, region});
}

wire::ResolveExtentsOk Client::resolve_extents(int fd, uint64_t first, uint32_t max, bool sync) {
  if (fd < 0) throw Error(Errc::invalid_argument, "resolve_extents needs an open file descriptor");
  return call<wire::ResolveExtentsOk>(wire::ResolveExtents{sync ? uint32_t(wire::kResolveSync) : 0u, first, max}, fd);
}

wire::ResolveExtentsOk Client::resolve_all_extents(int fd, bool sync) {
  wire::ResolveExtentsOk all = resolve_extents(fd, 0, 0, sync);
  while (all.extents.size() < all.total) {
    auto more = resolve_extents(fd, all.extents.size(), 0, false);
    if (more.extents.empty()) break;  // the file changed under us
    all.extents.insert(all.extents.end(), more.extents.begin(), more.extents.end());
  }
  return all;
}

wire::StatsOk Client::stats(bool all) {
  return call<wire::StatsOk>(wire::Stats{all ? uint32_t(wire::kStatsAll) : 0u});
}

// ---- Memory -----------------------------------------------------------------------

namespace {

// A chunk of the session heap: our mapping of a memfd homid mapped for the device.
struct RemoteRegion {
  std::shared_ptr<Client> client;
  uint32_t ctrl = 0;
  uint64_t region = 0;
  void* va = nullptr;
  size_t len = 0;
  ~RemoteRegion() {
    if (region) {
      try {  // the device lets go first; if homid is gone, so is its mapping
        client->unregister_dma(ctrl, region);
      } catch (const Error&) {
      }
    }
    if (va) munmap(va, len);
  }
};

class HomiDmaBackend final : public DmaBackend {
 public:
  HomiDmaBackend(std::shared_ptr<Client> c, uint32_t ctrl, wire::DmaKind kind, std::string name)
      : client_(std::move(c)), ctrl_(ctrl), kind_(kind), name_(std::move(name)) {}

  DmaChunk grow(size_t min_bytes) override {
    bool huge = kind_ == wire::DmaKind::hugepage;
    size_t unit = (huge || kind_ == wire::DmaKind::iova) ? HUGE_PAGE : PAGE;
    size_t len = (std::max<size_t>(min_bytes, 1) + unit - 1) / unit * unit;
    unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
    if (huge) flags |= MFD_HUGETLB | MFD_HUGE_2MB;
    Fd fd(memfd_create("homic-dma", flags));
    if (!fd) throw_errno(huge ? "memfd_create(MFD_HUGETLB): are 2 MiB hugepages reserved (vm.nr_hugepages)?"
                              : "memfd_create");
    if (ftruncate(fd.get(), off_t(len)) != 0) throw_errno("ftruncate homic memfd to " + std::to_string(len));
    if (fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) throw_errno("seal homic memfd");
    auto r = std::make_shared<RemoteRegion>();
    r->client = client_;
    r->ctrl = ctrl_;
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd.get(), 0);
    if (p == MAP_FAILED)
      throw_errno(huge ? "mmap hugetlb memfd: not enough free 2 MiB hugepages?" : "mmap homic memfd");
    r->va = p;
    r->len = len;
    wire::RegisterDmaOk ok = client_->register_dma(ctrl_, fd.get(), len);
    r->region = ok.region;
    uint64_t pages = ok.page_shift >= 63 ? 1 : (len + (uint64_t(1) << ok.page_shift) - 1) >> ok.page_shift;
    if (ok.bus.size() != pages) throw Error(Errc::protocol, "homid returned a bus table of the wrong size");
    DmaChunk c;
    c.va = static_cast<uint8_t*>(p);
    c.len = len;
    c.page_shift = ok.page_shift;
    c.bus = ok.bus;
    c.keepalive = std::move(r);
    return c;
  }
  std::string name() const override { return name_; }

 private:
  std::shared_ptr<Client> client_;
  uint32_t ctrl_;
  wire::DmaKind kind_;
  std::string name_;
};

// The QueueOwner of a queue pair homid created for us: the granted queue, released
// (and its doorbells unmapped) when the queue pair lets go of it.
class RemoteQueue final : public nvme::QueueOwner {
 public:
  explicit RemoteQueue(std::shared_ptr<Client> c) : client_(std::move(c)) {}
  bool fatal() const override { return !client_->connected(); }
  void release_queue(nvme::QueuePair&) override { queue_.reset(); }
  std::shared_ptr<Client> client_;
  std::unique_ptr<ExternalQueue> queue_;
};

void* map_doorbells(const Client::QueueGrant& g) {
  if (g.ok.map_length == 0 || g.ok.map_length > (64u << 20) || g.ok.sq_doorbell + 4 > g.ok.map_length ||
      g.ok.cq_doorbell + 4 > g.ok.map_length || g.ok.map_offset % PAGE)
    throw Error(Errc::protocol, "homid sent an invalid doorbell mapping");
  void* p = mmap(nullptr, g.ok.map_length, PROT_READ | PROT_WRITE, MAP_SHARED, g.fd.get(), off_t(g.ok.map_offset));
  if (p == MAP_FAILED) throw_errno("mmap the doorbells of queue " + std::to_string(g.ok.qid));
  return p;
}

}  // namespace

// ---- Session ----------------------------------------------------------------------

std::shared_ptr<Session> Session::open(std::shared_ptr<Client> client, const std::string& controller,
                                       const SessionOptions& opt) {
  std::shared_ptr<Session> s(new Session());
  s->info_ = client->controller(controller);
  s->client_ = client;
  s->heap_ = DmaHeap::create(std::make_unique<HomiDmaBackend>(client, s->info_.index, wire::DmaKind(s->info_.dma),
                                                              "homid:" + s->info_.name),
                             opt.dma_grow_bytes);
  return s;
}

uint32_t Session::lba_size(uint32_t nsid) const {
  auto n = std::ranges::find(info_.namespaces, nsid, &wire::NamespaceInfo::nsid);
  return n == info_.namespaces.end() ? 0 : n->lba_size;
}

uint64_t Session::nsze(uint32_t nsid) const {
  auto n = std::ranges::find(info_.namespaces, nsid, &wire::NamespaceInfo::nsid);
  return n == info_.namespaces.end() ? 0 : n->nsze;
}

nvme::QueueGeometry Session::geometry(size_t max_transfer) const {
  size_t mdts = info_.max_transfer;
  if (max_transfer == 0) max_transfer = mdts ? mdts : size_t(1) << 20;
  else if (mdts) max_transfer = std::min(max_transfer, mdts);
  max_transfer = std::max<size_t>(max_transfer, info_.page_size);
  nvme::QueueGeometry g;
  g.page_shift = uint32_t(__builtin_ctz(info_.page_size));
  g.max_transfer = max_transfer;
  g.lba_size.assign(1, 0);
  for (auto& n : info_.namespaces) {
    if (g.lba_size.size() <= n.nsid) g.lba_size.resize(n.nsid + 1, 0);
    g.lba_size[n.nsid] = n.lba_size;
  }
  return g;
}

std::unique_ptr<nvme::QueuePair> Session::create_queue_pair(nvme::QueueOptions opt, uint32_t nsid) {
  if (opt.depth < 2 || opt.depth > info_.max_queue_depth)
    throw Error(Errc::invalid_argument, "queue depth " + std::to_string(opt.depth) + " outside 2.." +
                                            std::to_string(info_.max_queue_depth) + " (CAP.MQES)");
  if (opt.use_sgl && !(info_.flags & wire::kCtrlSgl))
    throw Error(Errc::not_supported, info_.name + ": controller does not support SGLs (Identify SGLS)");
  if (opt.timeout.count() == 0) opt.timeout = std::chrono::milliseconds(30000);
  auto owner = std::make_shared<RemoteQueue>(client_);
  struct Keep {
    std::shared_ptr<RemoteQueue> owner;
    std::shared_ptr<Session> session;
  };
  auto keep = std::make_shared<Keep>(Keep{owner, shared_from_this()});
  auto qp = nvme::QueuePair::detached(owner.get(), keep, opt, geometry(opt.max_transfer), *heap_);
  // From here on, destroying qp releases the queue.
  owner->queue_ = create_queue_at(opt.depth, qp->sq_bus(), qp->cq_bus(), nsid, -1, 0);
  qp->bind(owner->queue_->qid(), owner->queue_->sq_doorbell(), owner->queue_->cq_doorbell());
  return qp;
}

ExternalQueue::~ExternalQueue() {
  if (qid_) {
    try {
      client_->release_queue(ctrl_, qid_);
    } catch (const Error&) {  // homid gone: it deleted the queues when it went
    }
  }
  if (map_) munmap(map_, map_len_);
}

std::unique_ptr<ExternalQueue> Session::create_queue_at(uint32_t depth, uint64_t sq_bus, uint64_t cq_bus,
                                                        uint32_t nsid, int gpu, uint32_t flags) {
  wire::AllocQueue req;
  req.ctrl = info_.index;
  req.depth = depth;
  req.nsid = nsid;
  req.flags = flags;
  if (gpu >= 0) {
    req.flags |= wire::kAllocGpu;
    req.gpu = uint32_t(gpu);
  }
  req.sq_bus = sq_bus;
  req.cq_bus = cq_bus;
  std::unique_ptr<ExternalQueue> q(new ExternalQueue());
  q->client_ = client_;
  q->ctrl_ = info_.index;
  Client::QueueGrant g = client_->alloc_queue(req);
  q->qid_ = g.ok.qid;  // from here on, destroying q releases the queue
  q->map_ = map_doorbells(g);
  q->map_len_ = g.ok.map_length;
  q->sq_off_ = g.ok.sq_doorbell;
  q->gpu_ = g.ok.flags & wire::kGrantGpu ? int(g.ok.gpu) : -1;
  auto* base = static_cast<uint8_t*>(q->map_);
  q->sq_ = reinterpret_cast<volatile uint32_t*>(base + g.ok.sq_doorbell);
  q->cq_ = reinterpret_cast<volatile uint32_t*>(base + g.ok.cq_doorbell);
  return q;
}

std::shared_ptr<Session> open(const std::string& socket, const std::string& controller, const SessionOptions& opt) {
  return Session::open(Client::connect(socket), controller, opt);
}

}  // namespace aisio::homic
