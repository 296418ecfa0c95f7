#include "emu/controller.hpp"

#include <pthread.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "emu/admin.hpp"
#include "emu/core.hpp"
#include "emu/idle.hpp"
#include "emu/worker.hpp"
#include "spec/registers.hpp"

namespace aisio::emu {

namespace reg = nvme::reg;
namespace cc = nvme::cc;
namespace csts = nvme::csts;

struct SoftController::Impl {
  explicit Impl(EmuConfig cfg) : core(std::move(cfg)) {
    for (unsigned i = 0; i < core.cfg.workers; ++i) workers.push_back(std::make_unique<Worker>(core, i));
    admin = std::make_unique<Admin>(core, workers);
  }
  ~Impl() {
    stop();
    admin->reset();  // workers are stopped: they drop their queues inline
  }

  void start();
  void stop();
  void run();
  void on_cc(uint32_t old_cc, uint32_t new_cc);
  bool enable(uint32_t cc, std::string& why);
  void controller_reset();
  void shutdown(uint32_t cc);
  void set_csts(uint32_t v) {
    csts = v;
    core.regs.store(reg::CSTS, v);  // release: state behind RDY/SHST is in place first
  }

  Core core;
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<Admin> admin;

  std::mutex mu;  // start/stop and the heap
  std::thread thread;
  std::atomic<bool> stopping{false};
  bool started = false;
  std::shared_ptr<DmaHeap> heap;

  // Controller thread only.
  uint32_t last_cc = 0;
  uint32_t csts = 0;
  bool enable_refused = false;

  mutable std::mutex err_mu;
  std::string enable_error;
};

void SoftController::Impl::start() {
  std::lock_guard lk(mu);
  if (started) return;
  for (auto& w : workers) w->start();
  stopping.store(false);
  thread = std::thread([this] { run(); });
  pthread_setname_np(thread.native_handle(), "aisio-emu-ctrl");
  started = true;
}

void SoftController::Impl::stop() {
  std::lock_guard lk(mu);
  if (!started) return;
  stopping.store(true);
  thread.join();
  for (auto& w : workers) w->stop();
  started = false;
}

void SoftController::Impl::run() {
  IdleBackoff idle(core.cfg.idle);
  IdleBackoff::init_thread();
  core.thread_alive(0, true);
  while (!stopping.load(std::memory_order_relaxed)) {
    uint64_t now = monotonic_ns();
    bool halted = core.check_halted(0);
    if (core.faults.frozen()) {  // unresponsive: registers are not even looked at
      idle.pass(false, now);
      continue;
    }
    bool busy = false;
    // acquire: AQA/ASQ/ACQ the host wrote before setting CC.EN are visible below.
    uint32_t cc_now = core.regs.load(reg::CC);
    if (cc_now != last_cc) {
      uint32_t old = last_cc;
      last_cc = cc_now;
      on_cc(old, cc_now);
      busy = true;
    }
    if (core.fatal.load(std::memory_order_acquire) && !(csts & csts::CFS)) {
      set_csts(csts | csts::CFS);
      busy = true;
    }
    if ((csts & csts::RDY) && !halted && !core.halted()) busy |= admin->poll(now);
    idle.pass(busy, now);
  }
  core.thread_alive(0, false);
}

void SoftController::Impl::on_cc(uint32_t old_cc, uint32_t new_cc) {
  bool was = old_cc & cc::EN, en = new_cc & cc::EN;
  // Polling can miss a quick EN 1 -> 0 -> 1 while an enable was refused (RDY never
  // rose, so the host had nothing to wait for): a changed CC with EN set is then
  // taken as a fresh enable attempt.
  if (was && en && enable_refused) {
    controller_reset();
    was = false;
  }
  if (!was && en) {
    std::string why;
    core.clear_fatal();
    enable_refused = !enable(new_cc, why);
    {
      std::lock_guard lk(err_mu);
      enable_error = why;  // empty after a successful enable
    }
    // Refuse loudly (CSTS.CFS) rather than let the host wait CAP.TO for RDY.
    if (enable_refused) core.raise_fatal("controller enable refused: " + why);
  } else if (was && !en) {
    controller_reset();
  }
  if (en && (csts & csts::RDY) && cc::get_shn(new_cc) != cc::SHN_NONE &&
      csts::get_shst(csts) == csts::SHST_NORMAL)
    shutdown(new_cc);
}

bool SoftController::Impl::enable(uint32_t c, std::string& why) {
  const EmuConfig& cfg = core.cfg;
  uint32_t mps = cc::get_mps(c);
  uint32_t aqa = core.regs.load(reg::AQA);
  uint32_t asqs = nvme::aqa::asqs(aqa), acqs = nvme::aqa::acqs(aqa);
  uint64_t asq = core.regs.load64(reg::ASQ), acq = core.regs.load64(reg::ACQ);
  uint64_t page_mask = (uint64_t(4096) << mps) - 1;
  if (cc::get_css(c) != 0) why = "CC.CSS must select the NVM command set (0)";
  else if (mps > cfg.mpsmax) why = "CC.MPS " + std::to_string(mps) + " exceeds CAP.MPSMAX " + std::to_string(cfg.mpsmax);
  else if (((c >> 11) & 7u) != 0) why = "CC.AMS must be round robin (0)";
  // The queue entry sizes may still be 0 here: the spec lets the host set them after
  // enabling (before creating I/O queues, which is where they are checked again).
  else if (cc::get_iosqes(c) != 0 && cc::get_iosqes(c) != nvme::SQE_SIZE_LOG2)
    why = "CC.IOSQES must be 6 (64-byte SQEs)";
  else if (cc::get_iocqes(c) != 0 && cc::get_iocqes(c) != nvme::CQE_SIZE_LOG2)
    why = "CC.IOCQES must be 4 (16-byte CQEs)";
  else if (asqs < 2 || acqs < 2) why = "AQA: the admin queues need at least 2 entries";
  else if ((asq & page_mask) || (acq & page_mask)) why = "ASQ/ACQ must be aligned to the memory page size";
  else if (!core.dma->translate(asq, size_t(asqs) * 64)) why = "ASQ is not inside mapped DMA memory";
  else if (!core.dma->translate(acq, size_t(acqs) * 16)) why = "ACQ is not inside mapped DMA memory";
  if (!why.empty()) return false;
  core.page_shift.store(12 + mps, std::memory_order_relaxed);
  core.shut_down.store(false);
  core.regs.clear_doorbells();
  admin->enable(asq, acq, asqs, acqs);
  set_csts(csts::RDY);
  return true;
}

void SoftController::Impl::controller_reset() {
  enable_refused = false;
  admin->reset();
  core.clear_fatal();
  core.shut_down.store(false);
  core.regs.clear_doorbells();
  uint64_t cap = core.regs.cap();  // read-only registers: undo any host scribbles
  core.regs.store(reg::CAP, uint32_t(cap));
  core.regs.store(reg::CAP + 4, uint32_t(cap >> 32));
  core.regs.store(reg::VS, nvme::Version::make(2, 0, 0));
  set_csts(0);
}

void SoftController::Impl::shutdown(uint32_t c) {
  set_csts((csts & ~csts::shst(3)) | csts::shst(csts::SHST_OCCURRING));
  core.shut_down.store(true, std::memory_order_release);  // stop fetching commands
  if (cc::get_shn(c) == cc::SHN_NORMAL)
    for (auto& ns : core.namespaces) ns->flush();
  set_csts((csts & ~csts::shst(3)) | csts::shst(csts::SHST_COMPLETE));
}

SoftController::SoftController(EmuConfig cfg) : impl_(std::make_unique<Impl>(std::move(cfg))) {}
SoftController::~SoftController() = default;

void SoftController::start() { impl_->start(); }
void SoftController::stop() { impl_->stop(); }

std::shared_ptr<MmioWindow> SoftController::bar0(const std::string& describe) {
  const RegisterFile& r = impl_->core.regs;
  return std::make_shared<EmuMmioWindow>(r.base(), r.size(), describe, r.memory(), impl_->core.dma);
}

std::shared_ptr<DmaHeap> SoftController::dma() {
  std::lock_guard lk(impl_->mu);
  if (!impl_->heap) impl_->heap = DmaHeap::create(std::make_unique<EmuDmaBackend>(impl_->core.dma, "emu"));
  return impl_->heap;
}

std::shared_ptr<DmaSpace> SoftController::dma_space() { return impl_->core.dma; }
FaultInjector& SoftController::faults() { return impl_->core.faults; }
const EmuConfig& SoftController::config() const { return impl_->core.cfg; }
int SoftController::bar0_fd() const { return impl_->core.regs.fd(); }
size_t SoftController::bar0_size() const { return impl_->core.regs.size(); }

EmuStats SoftController::stats() const {
  EmuStats s;
  impl_->admin->counters().add_to(s, true);
  for (auto& w : impl_->workers) w->counters().add_to(s, false);
  s.invalid_doorbell_writes = impl_->core.invalid_doorbells.load(std::memory_order_relaxed);
  s.io_submission_queues = impl_->admin->io_sq_count();
  s.io_completion_queues = impl_->admin->io_cq_count();
  uint32_t st = impl_->core.regs.load(reg::CSTS);
  s.ready = st & csts::RDY;
  s.fatal = st & csts::CFS;
  return s;
}

std::string SoftController::last_error() const {
  std::string r = impl_->core.fatal_reason();
  if (!r.empty()) return r;
  std::lock_guard lk(impl_->err_mu);
  return impl_->enable_error;
}

}  // namespace aisio::emu
