#include "tcp/controller.hpp"

#include <fmt/format.h>

#include <cstring>

namespace aisio::tcp {

using namespace std::chrono;

namespace {
constexpr size_t kIoccszOffset = 1792;  // Identify Controller: IOCCSZ (16-byte units, SQE included)
}

std::unique_ptr<Controller> Controller::connect(const Address& a, const ControllerOptions& o) {
  std::unique_ptr<Controller> c(new Controller(a, o));
  c->enable();
  c->identify();
  if (o.kato_ms) c->ka_ = std::thread([p = c.get()] { p->keep_alive_loop(); });
  return c;
}

Controller::Controller(const Address& a, const ControllerOptions& o) : addr_(a), opt_(o), host_(host_identity(o.etc_nvme)) {
  connect_admin();
}

void Controller::connect_admin() {
  ConnectTarget t{addr_, host_, 0, fabrics::DYNAMIC_CNTLID};
  admin_ = QueuePair::connect(t, {.depth = opt_.admin_depth, .timeout = opt_.admin_timeout, .digests = opt_.digests,
                                  .kato_ms = opt_.kato_ms, .in_capsule_max = 8192, .max_transfer = 64u << 10});
  cntlid_ = admin_->cntlid();
}

uint16_t Controller::reassociate() {
  std::lock_guard serial(reassoc_mu_);  // one thread re-associates; the others then find it done
  try {
    if (admin(nvme::cmd::make(nvme::admin::KEEP_ALIVE)).ok()) return cntlid_;
  } catch (const Error&) {
  }
  // The association is gone (a target restart, a port taken down): a new admin queue,
  // a new controller, enabled as at first (the Identify data is kept).
  {
    std::lock_guard g(admin_mu_);
    connect_admin();
  }
  enable();
  ++reassociations_;
  return cntlid_;
}

Controller::~Controller() {
  {
    std::lock_guard g(ka_mu_);
    stop_ = true;
  }
  ka_cv_.notify_all();
  if (ka_.joinable()) ka_.join();
  try {  // orderly shutdown: CC.SHN = normal; the target tears the controller down on close anyway
    if (admin_ && admin_->connected()) {
      uint32_t cc = uint32_t(property_get(nvme::reg::CC, false));
      property_set(nvme::reg::CC, (cc & ~nvme::cc::shn(3)) | nvme::cc::shn(1));
    }
  } catch (const std::exception&) {
  }
}

nvme::Completion Controller::admin(const nvme::Sqe& sqe, void* data, uint32_t len, uint32_t* dw1) {
  std::lock_guard g(admin_mu_);
  return admin_->execute(sqe, data, len, dw1);
}

uint64_t Controller::property_get(uint32_t offset, bool eight_bytes) {
  uint32_t hi = 0;
  nvme::Completion c = admin(fabrics::property_get(offset, eight_bytes), nullptr, 0, &hi);
  if (!c.ok()) throw Error(c.status, fmt::format("{}: Property Get {:#x}", describe(), offset));
  return eight_bytes ? uint64_t(c.dw0) | uint64_t(hi) << 32 : c.dw0;
}

void Controller::property_set(uint32_t offset, uint64_t value, bool eight_bytes) {
  nvme::Completion c = admin(fabrics::property_set(offset, value, eight_bytes));
  if (!c.ok()) throw Error(c.status, fmt::format("{}: Property Set {:#x}", describe(), offset));
}

void Controller::enable() {
  cap_.raw = property_get(nvme::reg::CAP, true);
  vs_.raw = uint32_t(property_get(nvme::reg::VS, false));
  if (!(cap_.css() & nvme::CAP_CSS_NVM))
    throw Error(Errc::not_supported, describe() + ": controller does not support the NVM command set");
  if (cap_.mpsmin() != 0) throw Error(Errc::not_supported, describe() + ": CAP.MPSMIN is not 4 KiB");
  const uint32_t cc = nvme::cc::EN | nvme::cc::css(0) | nvme::cc::mps(0) | nvme::cc::iosqes(6) | nvme::cc::iocqes(4);
  property_set(nvme::reg::CC, cc);
  const auto deadline = steady_clock::now() + milliseconds(std::max<uint32_t>(cap_.to(), 1) * 500);
  for (;;) {
    const uint32_t csts = uint32_t(property_get(nvme::reg::CSTS, false));
    if (csts & nvme::csts::CFS) throw Error(Errc::controller_fatal, describe() + ": controller fatal status while enabling");
    if (csts & nvme::csts::RDY) break;
    if (steady_clock::now() > deadline)
      throw Error(Errc::not_ready, fmt::format("{}: CSTS.RDY did not become 1 within CAP.TO ({} ms)", describe(),
                                               std::max<uint32_t>(cap_.to(), 1) * 500));
    std::this_thread::sleep_for(milliseconds(1));
  }
}

void Controller::identify() {
  std::vector<uint8_t> buf(4096);
  id_ = std::make_unique<nvme::IdentifyController>();
  nvme::Completion c = admin(nvme::cmd::identify(nvme::cns::CONTROLLER, 0), buf.data(), 4096);
  if (!c.ok()) throw Error(c.status, describe() + ": Identify Controller");
  std::memcpy(id_.get(), buf.data(), sizeof(nvme::IdentifyController));
  mdts_bytes_ = id_->mdts ? (size_t(1) << id_->mdts) << 12 : 0;
  uint32_t ioccsz = 0;
  std::memcpy(&ioccsz, buf.data() + kIoccszOffset, 4);
  in_capsule_max_ = ioccsz >= 4 ? ioccsz * 16 - 64 : 0;

  const uint16_t want = std::max<uint16_t>(opt_.io_queues, 1);
  c = admin(nvme::cmd::set_num_queues(want, want));
  if (!c.ok()) throw Error(c.status, describe() + ": Number of Queues");
  io_queue_limit_ = uint16_t(std::min<uint32_t>({(c.dw0 & 0xFFFFu) + 1, (c.dw0 >> 16) + 1, want}));
  qid_used_.assign(io_queue_limit_ + 1u, false);
  qid_used_[0] = true;

  namespaces_ = nvme::active_namespaces(id_->nn, [&](uint8_t cns, uint32_t nsid) -> const uint8_t* {
    return admin(nvme::cmd::identify(cns, nsid), buf.data(), 4096).ok() ? buf.data() : nullptr;
  });
}

const nvme::Namespace& Controller::ns(uint32_t nsid) const {
  for (auto& n : namespaces_)
    if (n.nsid == nsid) return n;
  throw Error(Errc::invalid_argument, fmt::format("{}: namespace {} is not active", describe(), nsid));
}

std::unique_ptr<QueuePair> Controller::create_queue_pair(QueueOptions o) {
  const uint32_t max_depth = std::min<uint32_t>(cap_.mqes() + 1u, 65535);
  if (o.depth < 2 || o.depth > max_depth)
    throw Error(Errc::invalid_argument, fmt::format("queue depth {} outside 2..{} (CAP.MQES)", o.depth, max_depth));
  uint16_t qid = 0;
  {
    std::lock_guard g(qid_mu_);
    for (uint16_t q = 1; q < qid_used_.size(); ++q)
      if (!qid_used_[q]) {
        qid_used_[q] = true, qid = q;
        break;
      }
  }
  if (!qid) throw Error(Errc::no_memory, fmt::format("{}: all {} I/O queues are in use", describe(), io_queue_limit_));
  if (o.timeout.count() == 0) o.timeout = opt_.io_timeout;
  o.digests = opt_.digests;
  o.kato_ms = 0;
  o.in_capsule_max = in_capsule_max_;
  const size_t limit = mdts_bytes_ ? mdts_bytes_ : size_t(1) << 20;
  o.max_transfer = o.max_transfer ? std::min(o.max_transfer, limit) : limit;
  try {
    auto q = QueuePair::connect(ConnectTarget{addr_, host_, qid, cntlid_}, o);
    if (opt_.ctrl_loss_timeout.count() > 0) {
      Recovery r;
      r.loss_timeout = opt_.ctrl_loss_timeout;
      r.first_delay = opt_.reconnect_delay;
      r.reconnect = [this](QueuePair& qp) {
        const uint16_t cntlid = reassociate();
        qp.reattach(connect_tcp(addr_.host, addr_.port, Clock::now() + qp.options().timeout),
                    ConnectTarget{addr_, host_, qp.qid(), cntlid});
      };
      q->set_recovery(std::move(r));
    }
    return q;
  } catch (...) {
    release_qid(qid);
    throw;
  }
}

void Controller::release_qid(uint16_t qid) {
  std::lock_guard g(qid_mu_);
  if (qid < qid_used_.size()) qid_used_[qid] = false;
}

void Controller::keep_alive_loop() {
  const auto period = milliseconds(std::max<uint32_t>(opt_.kato_ms / 2, 1));
  std::unique_lock lk(ka_mu_);
  while (!ka_cv_.wait_for(lk, period, [this] { return stop_; })) {
    lk.unlock();
    try {
      if (admin(nvme::cmd::make(nvme::admin::KEEP_ALIVE)).ok()) ++keep_alives_;
    } catch (const std::exception&) {
      // The admin connection is gone: re-associate now (the I/O queues do it too when
      // theirs break), and again at the next period if the target is not back yet.
      try {
        if (opt_.ctrl_loss_timeout.count() > 0) reassociate();
      } catch (const std::exception&) {
      }
    }
    lk.lock();
  }
}

}  // namespace aisio::tcp
