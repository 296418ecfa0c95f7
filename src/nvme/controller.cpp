#include "nvme/controller.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "common/error.hpp"

namespace aisio::nvme {

using namespace std::chrono;

std::string Completion::describe() const {
  switch (host) {
    case HostStatus::none: return status_name(status);
    case HostStatus::timeout: return "command timed out (no completion)";
    case HostStatus::aborted_reset: return "command aborted by a controller reset";
    case HostStatus::controller_fatal: return "controller fatal status (CSTS.CFS)";
    case HostStatus::transport: return "connection to the controller lost";
  }
  return "unknown";
}

std::shared_ptr<Controller> Controller::create(std::shared_ptr<MmioWindow> bar0, std::shared_ptr<DmaHeap> dma,
                                               ControllerOptions opt) {
  std::shared_ptr<Controller> c(new Controller(std::move(bar0), std::move(dma), opt));
  c->enable();
  c->identify();
  c->negotiate_queues();
  return c;
}

Controller::Controller(std::shared_ptr<MmioWindow> bar0, std::shared_ptr<DmaHeap> dma, ControllerOptions opt)
    : bar0_(std::move(bar0)), dma_(std::move(dma)), opt_(opt) {
  if (!bar0_ || bar0_->size() < reg::DOORBELL_BASE + 8)
    throw Error(Errc::invalid_argument, "BAR0 window is too small for NVMe registers");
  cap_.raw = bar0_->read64(reg::CAP);
  vs_.raw = bar0_->read32(reg::VS);
  if (cap_.raw == ~0ull) throw Error(Errc::controller_fatal, describe() + ": CAP reads all ones (device gone?)");
  if (!(cap_.css() & CAP_CSS_NVM))
    throw Error(Errc::not_supported, describe() + ": controller does not support the NVM command set");
  // Host memory pages are 4 KiB; use the controller's minimum if it is larger.
  page_shift_ = 12 + cap_.mpsmin();
  if (cap_.mpsmin() > cap_.mpsmax()) throw Error(Errc::not_supported, "CAP.MPSMIN > CAP.MPSMAX");
  ready_timeout_ = milliseconds(std::max<uint32_t>(cap_.to(), 1) * 500);
  if (opt_.admin_depth < 2 || opt_.admin_depth > ADMIN_QUEUE_MAX || opt_.admin_depth > cap_.mqes() + 1u)
    throw Error(Errc::invalid_argument, fmt::format("admin queue depth {} outside 2..{}", opt_.admin_depth,
                                                    std::min<uint32_t>(ADMIN_QUEUE_MAX, cap_.mqes() + 1)));
}

Controller::~Controller() {
  if (!shut_down_) {
    try {
      shutdown();
    } catch (const std::exception&) {
      // Best effort: the controller may be gone or fatal; the memory goes regardless.
    }
  }
}

void Controller::wait_ready(bool ready) {
  auto deadline = steady_clock::now() + ready_timeout_;
  for (;;) {
    uint32_t s = bar0_->read32(reg::CSTS);
    if (s == ~0u) throw Error(Errc::controller_fatal, describe() + ": CSTS reads all ones (device gone?)");
    if (bool(s & csts::RDY) == ready) return;
    if (ready && (s & csts::CFS))
      throw Error(Errc::controller_fatal, describe() + ": controller fatal status while enabling");
    if (steady_clock::now() > deadline)
      throw Error(Errc::not_ready, fmt::format("{}: CSTS.RDY did not become {} within CAP.TO ({} ms)", describe(),
                                               int(ready), ready_timeout_.count()));
    std::this_thread::sleep_for(microseconds(100));
  }
}

void Controller::disable() {
  uint32_t cc_val = bar0_->read32(reg::CC);
  uint32_t s = bar0_->read32(reg::CSTS);
  // A controller still becoming ready must finish before it can be disabled.
  if ((cc_val & cc::EN) && !(s & csts::RDY) && !(s & csts::CFS)) wait_ready(true);
  bar0_->write32(reg::CC, cc_val & ~cc::EN);
  wait_ready(false);
}

void Controller::init_admin_queue() {
  if (!admin_) {
    QueueOptions qo;
    qo.depth = opt_.admin_depth;
    qo.max_transfer = 64 * 1024;  // admin data is small: identify, logs
    qo.timeout = opt_.admin_timeout;
    admin_.reset(new QueuePair(this, 0, qo, geometry(qo.max_transfer)));
    admin_->allocate(*dma_);
  } else {
    admin_->reset_state();
  }
  admin_->sq_db_ = bar0_->reg32(sq_tail_doorbell(0, cap_.dstrd()));
  admin_->cq_db_ = bar0_->reg32(cq_head_doorbell(0, cap_.dstrd()));
  bar0_->write32(reg::AQA, aqa::make(opt_.admin_depth, opt_.admin_depth));
  bar0_->write64(reg::ASQ, admin_->sq_mem_.iova());
  bar0_->write64(reg::ACQ, admin_->cq_mem_.iova());
}

void Controller::enable() {
  disable();
  init_admin_queue();
  uint32_t cc_val = cc::css(0) | cc::mps(page_shift_ - 12) | cc::ams(0) | cc::shn(cc::SHN_NONE) |
                    cc::iosqes(SQE_SIZE_LOG2) | cc::iocqes(CQE_SIZE_LOG2);
  // AQA/ASQ/ACQ must be visible before EN: MMIO stores to one device stay in order.
  bar0_->write32(reg::CC, cc_val);
  bar0_->write32(reg::CC, cc_val | cc::EN);
  wait_ready(true);
  shut_down_ = false;
}

Completion Controller::admin(const Sqe& sqe, const DmaBuffer* data, size_t len) {
  std::lock_guard lk(admin_mu_);
  return admin_->execute(sqe, data, 0, len);
}

uint32_t Controller::admin_checked(const Sqe& sqe, const char* what, const DmaBuffer* data, size_t len) {
  Completion c = admin(sqe, data, len);
  if (c.host != HostStatus::none)
    throw Error(c.host == HostStatus::timeout ? Errc::timeout : Errc::controller_fatal,
                fmt::format("{}: {}: {}", describe(), what, c.describe()));
  if (!c.status.ok()) throw Error(c.status, fmt::format("{}: {}", describe(), what));
  return c.dw0;
}

void Controller::identify() {
  DmaBuffer buf = dma_->alloc(4096, page_size());
  admin_checked(cmd::identify(cns::CONTROLLER, 0), "Identify Controller", &buf, 4096);
  id_ = std::make_unique<IdentifyController>();
  std::memcpy(id_.get(), buf.data(), sizeof(IdentifyController));
  mdts_bytes_ = id_->mdts ? (size_t(1) << id_->mdts) << (12 + cap_.mpsmin()) : 0;

  namespaces_ = active_namespaces(id_->nn, [&](uint8_t cns, uint32_t nsid) -> const uint8_t* {
    std::memset(buf.data(), 0, 4096);
    return admin(cmd::identify(cns, nsid), &buf, 4096).ok() ? buf.data() : nullptr;
  });
}

std::vector<Namespace> active_namespaces(uint32_t nn,
                                         const std::function<const uint8_t*(uint8_t cns, uint32_t nsid)>& identify) {
  std::vector<uint32_t> nsids;
  if (const uint8_t* list = identify(cns::ACTIVE_NSID_LIST, 0)) {
    for (size_t i = 0; i < 1024; ++i) {
      uint32_t n;
      std::memcpy(&n, list + 4 * i, 4);
      if (!n) break;
      nsids.push_back(n);
    }
  } else {
    for (uint32_t n = 1; n <= std::min<uint32_t>(nn, 1024); ++n) nsids.push_back(n);
  }
  std::vector<Namespace> out;
  for (uint32_t nsid : nsids) {
    const uint8_t* page = identify(cns::NAMESPACE, nsid);
    if (!page) continue;
    auto idns = std::make_shared<IdentifyNamespace>();
    std::memcpy(idns.get(), page, sizeof(IdentifyNamespace));
    if (idns->nsze == 0) continue;  // allocated but inactive
    out.push_back({.nsid = nsid, .lba_size = lba_size(*idns), .nsze = idns->nsze, .ncap = idns->ncap, .id = idns});
  }
  return out;
}

void Controller::negotiate_queues() {
  uint16_t want = std::max<uint16_t>(opt_.io_queues, 1);
  Completion c = admin(cmd::set_num_queues(want, want));
  if (!c.ok()) {
    // Number of Queues may only be set once per reset on some controllers: ask instead.
    c = admin(cmd::get_features(feature::NUMBER_OF_QUEUES));
    if (!c.ok()) throw Error(c.status, describe() + ": Number of Queues");
  }
  uint32_t nsqa = (c.dw0 & 0xFFFFu) + 1, ncqa = (c.dw0 >> 16) + 1;
  io_queue_limit_ = uint16_t(std::min<uint32_t>({nsqa, ncqa, want}));
  qid_used_.assign(io_queue_limit_ + 1u, false);
  qid_used_[0] = true;
}

const Namespace& Controller::ns(uint32_t nsid) const {
  for (auto& n : namespaces_)
    if (n.nsid == nsid) return n;
  throw Error(Errc::invalid_argument, fmt::format("{}: namespace {} is not active", describe(), nsid));
}

std::unique_ptr<QueuePair> Controller::create_queue_pair(QueueOptions opt) {
  uint32_t max_depth = std::min<uint32_t>(cap_.mqes() + 1u, 65536);
  if (opt.depth < 2 || opt.depth > max_depth)
    throw Error(Errc::invalid_argument, fmt::format("queue depth {} outside 2..{} (CAP.MQES)", opt.depth, max_depth));
  if (opt.use_sgl && !sgl_supported())
    throw Error(Errc::not_supported, describe() + ": controller does not support SGLs (Identify SGLS)");
  size_t limit = mdts_bytes_ ? mdts_bytes_ : size_t(1) << 20;
  size_t max_transfer = opt.max_transfer ? std::min(opt.max_transfer, mdts_bytes_ ? mdts_bytes_ : opt.max_transfer)
                                         : limit;
  if (max_transfer < page_size()) max_transfer = page_size();

  uint16_t qid = take_qid();
  std::unique_ptr<QueuePair> qp;
  try {
    if (opt.timeout.count() == 0) opt.timeout = opt_.io_timeout;
    qp.reset(new QueuePair(this, qid, opt, geometry(max_transfer)));
    qp->keep_ = shared_from_this();
    qp->allocate(*dma_);
    create_io_queues(*qp);
  } catch (...) {
    if (qp) {  // not registered: its destructor must not delete queues
      qp->owner_ = nullptr;
      qp->keep_.reset();
    }
    free_qid(qid);
    throw;
  }
  std::lock_guard lk(queues_mu_);
  live_.push_back(qp.get());
  return qp;
}

void Controller::create_io_queues(QueuePair& qp) {
  uint32_t end = sq_tail_doorbell(qp.qid_, cap_.dstrd()) + 2 * (4u << cap_.dstrd());
  if (end > bar0_->size())
    throw Error(Errc::invalid_argument, fmt::format("{}: doorbells of queue {} lie beyond BAR0", describe(), qp.qid_));
  qp.sq_db_ = bar0_->reg32(sq_tail_doorbell(qp.qid_, cap_.dstrd()));
  qp.cq_db_ = bar0_->reg32(cq_head_doorbell(qp.qid_, cap_.dstrd()));
  admin_checked(cmd::create_io_cq(qp.qid_, qp.depth_, qp.cq_mem_.iova()), "Create I/O Completion Queue");
  try {
    admin_checked(cmd::create_io_sq(qp.qid_, qp.depth_, qp.sq_mem_.iova(), qp.qid_), "Create I/O Submission Queue");
  } catch (...) {
    admin(cmd::delete_io_cq(qp.qid_));
    throw;
  }
}

uint16_t Controller::take_qid() {
  std::lock_guard lk(queues_mu_);
  for (uint16_t q = 1; q < qid_used_.size(); ++q)
    if (!qid_used_[q]) {
      qid_used_[q] = true;
      return q;
    }
  throw Error(Errc::no_memory, fmt::format("{}: all {} I/O queue pairs granted by the controller are in use",
                                           describe(), io_queue_limit_));
}

void Controller::free_qid(uint16_t qid) {
  std::lock_guard lk(queues_mu_);
  if (qid < qid_used_.size()) qid_used_[qid] = false;
}

uint16_t Controller::create_io_queue_at(uint32_t depth, uint64_t sq_bus, uint64_t cq_bus) {
  uint32_t max_depth = std::min<uint32_t>(cap_.mqes() + 1u, 65536);
  if (depth < 2 || depth > max_depth)
    throw Error(Errc::invalid_argument, fmt::format("queue depth {} outside 2..{} (CAP.MQES)", depth, max_depth));
  uint16_t qid = take_qid();
  try {
    admin_checked(cmd::create_io_cq(qid, depth, cq_bus), "Create I/O Completion Queue");
    Completion c = admin(cmd::create_io_sq(qid, depth, sq_bus, qid));
    if (!c.ok()) {
      admin(cmd::delete_io_cq(qid));
      throw Error(c.status, describe() + ": Create I/O Submission Queue");
    }
  } catch (...) {
    free_qid(qid);
    throw;
  }
  return qid;
}

void Controller::delete_io_queue_at(uint16_t qid) {
  if (!fatal()) {
    admin(cmd::delete_io_sq(qid));
    admin(cmd::delete_io_cq(qid));
  }
  free_qid(qid);
}

QueueGeometry Controller::geometry(size_t max_transfer) const {
  if (max_transfer == 0) max_transfer = mdts_bytes_ ? mdts_bytes_ : size_t(1) << 20;
  QueueGeometry g;
  g.page_shift = page_shift_;
  g.max_transfer = max_transfer;
  g.lba_size.assign(1, 0);
  for (auto& n : namespaces_) {
    if (g.lba_size.size() <= n.nsid) g.lba_size.resize(n.nsid + 1, 0);
    g.lba_size[n.nsid] = n.lba_size;
  }
  return g;
}

void Controller::release_queue(QueuePair& qp) {
  if (qp.qid_ == 0) return;
  {
    std::lock_guard lk(queues_mu_);
    live_.erase(std::remove(live_.begin(), live_.end(), &qp), live_.end());
  }
  if (!shut_down_ && !fatal()) {
    // Deleting the SQ first makes the controller end its outstanding commands, so no
    // DMA targets this queue's memory after both deletions complete.
    admin(cmd::delete_io_sq(qp.qid_));
    admin(cmd::delete_io_cq(qp.qid_));
  }
  free_qid(qp.qid_);  // only now may another queue pair take the id
}

void Controller::reset() {
  std::lock_guard lk(admin_mu_);
  std::lock_guard lq(queues_mu_);
  for (QueuePair* qp : live_) qp->abort_outstanding(HostStatus::aborted_reset);
  admin_->abort_outstanding(HostStatus::aborted_reset);
  enable();
  // The admin lock is held: run the re-creation through the admin queue directly.
  auto run = [&](const Sqe& s, const char* what) {
    Completion c = admin_->execute(s);
    if (!c.ok()) throw Error(c.status, fmt::format("{}: {} after reset: {}", describe(), what, c.describe()));
    return c.dw0;
  };
  run(cmd::set_num_queues(io_queue_limit_, io_queue_limit_), "Number of Queues");
  for (QueuePair* qp : live_) {
    qp->reset_state();
    run(cmd::create_io_cq(qp->qid_, qp->depth_, qp->cq_mem_.iova()), "Create I/O Completion Queue");
    run(cmd::create_io_sq(qp->qid_, qp->depth_, qp->sq_mem_.iova(), qp->qid_), "Create I/O Submission Queue");
  }
}

void Controller::shutdown() {
  if (shut_down_) return;
  if (!fatal()) {
    std::vector<uint16_t> qids;
    {
      std::lock_guard lk(queues_mu_);
      for (QueuePair* qp : live_) qids.push_back(qp->qid_);
    }
    for (uint16_t q : qids) {
      admin(cmd::delete_io_sq(q));
      admin(cmd::delete_io_cq(q));
    }
  }
  shut_down_ = true;
  uint32_t cc_val = bar0_->read32(reg::CC);
  bar0_->write32(reg::CC, (cc_val & ~cc::shn(3)) | cc::shn(cc::SHN_NORMAL));
  auto deadline = steady_clock::now() + std::max(ready_timeout_, milliseconds(1000));
  while (csts::get_shst(bar0_->read32(reg::CSTS)) != csts::SHST_COMPLETE) {
    if (fatal()) break;
    if (steady_clock::now() > deadline)
      throw Error(Errc::timeout, describe() + ": shutdown did not complete (CSTS.SHST)");
    std::this_thread::sleep_for(microseconds(100));
  }
}

std::vector<ErrorLogEntry> Controller::error_log(uint32_t entries) {
  entries = std::min<uint32_t>(entries, id_->elpe + 1u);
  size_t bytes = size_t(entries) * sizeof(ErrorLogEntry);
  DmaBuffer buf = dma_->alloc(bytes, page_size());
  admin_checked(cmd::get_log_page(log_page::ERROR_INFO, uint32_t(bytes)), "Get Log Page (Error Information)", &buf,
                bytes);
  std::vector<ErrorLogEntry> out(entries);
  std::memcpy(out.data(), buf.data(), bytes);
  return out;
}

SmartLog Controller::smart_log() {
  DmaBuffer buf = dma_->alloc(sizeof(SmartLog), page_size());
  admin_checked(cmd::get_log_page(log_page::SMART, sizeof(SmartLog)), "Get Log Page (SMART)", &buf, sizeof(SmartLog));
  SmartLog s;
  std::memcpy(&s, buf.data(), sizeof s);
  return s;
}

}  // namespace aisio::nvme
