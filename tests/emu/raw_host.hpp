// A minimal register-level NVMe host for the emulator tests: BAR0 writes and queue
// memory by hand, independent of the real driver in src/nvme.
#pragma once
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>

#include "memory/dma.hpp"
#include "pcie/mmio.hpp"
#include "spec/commands.hpp"
#include "spec/registers.hpp"
#include "spec/status.hpp"

namespace aisio::emu::test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

inline nvme::Status status_of(const nvme::Cqe& c) { return nvme::Status(nvme::cqe_status_field(c.status)); }

struct RawQueue {
  uint16_t qid = 0;
  uint32_t sq_size = 0, cq_size = 0;
  DmaBuffer sq, cq;
  uint32_t sq_tail = 0, cq_head = 0;
  uint16_t phase = 1;
  uint16_t next_cid = 0;
};

class RawHost {
 public:
  RawHost(std::shared_ptr<MmioWindow> bar, std::shared_ptr<DmaHeap> heap) : bar_(std::move(bar)), heap_(std::move(heap)) {
    dstrd_ = nvme::Cap{bar_->read64(nvme::reg::CAP)}.dstrd();
  }
  MmioWindow& bar() { return *bar_; }
  DmaHeap& heap() { return *heap_; }
  RawQueue& admin_queue() { return admin_; }

  static uint32_t default_cc(uint32_t mps = 0) {
    return nvme::cc::EN | nvme::cc::css(0) | nvme::cc::mps(mps) | nvme::cc::iosqes(6) | nvme::cc::iocqes(4);
  }
  uint32_t dstrd() const { return dstrd_; }
  bool wait_csts(uint32_t mask, uint32_t value, std::chrono::milliseconds t = 10s) {
    auto end = Clock::now() + t;
    while ((bar_->read32(nvme::reg::CSTS) & mask) != value)
      if (Clock::now() > end) return false;
      else std::this_thread::sleep_for(50us);
    return true;
  }
  // AQA/ASQ/ACQ, then CC.EN; true once CSTS.RDY is set.
  bool enable(uint32_t entries = 16, uint32_t cc = default_cc()) {
    admin_ = RawQueue{};
    page_ = size_t(4096) << nvme::cc::get_mps(cc);  // queues must be page aligned
    admin_.sq_size = admin_.cq_size = entries;
    admin_.sq = heap_->alloc(entries * 64, page_);
    admin_.cq = heap_->alloc(entries * 16, page_);
    bar_->write32(nvme::reg::AQA, nvme::aqa::make(entries, entries));
    bar_->write64(nvme::reg::ASQ, admin_.sq.iova());
    bar_->write64(nvme::reg::ACQ, admin_.cq.iova());
    std::atomic_thread_fence(std::memory_order_release);
    bar_->write32(nvme::reg::CC, cc);
    auto end = Clock::now() + 10s;
    uint32_t st;
    while (!((st = bar_->read32(nvme::reg::CSTS)) & (nvme::csts::RDY | nvme::csts::CFS)) && Clock::now() < end)
      std::this_thread::sleep_for(50us);
    return (st & (nvme::csts::RDY | nvme::csts::CFS)) == nvme::csts::RDY;
  }
  bool disable() {
    bar_->write32(nvme::reg::CC, 0);
    io_.clear();
    return wait_csts(nvme::csts::RDY | nvme::csts::CFS, 0);  // a reset also clears CFS
  }

  uint16_t submit(RawQueue& q, nvme::Sqe cmd) {
    cmd.cid = q.next_cid++;
    std::memcpy(q.sq.data() + q.sq_tail * 64, &cmd, 64);
    q.sq_tail = (q.sq_tail + 1) % q.sq_size;
    ring_sq(q);
    return cmd.cid;
  }
  void ring_sq(RawQueue& q) {
    std::atomic_thread_fence(std::memory_order_release);  // SQE before the doorbell
    bar_->write32(nvme::sq_tail_doorbell(q.qid, dstrd_), q.sq_tail);
  }
  void ring_cq(RawQueue& q) { bar_->write32(nvme::cq_head_doorbell(q.qid, dstrd_), q.cq_head); }
  // Is the next CQE there (without consuming it)?
  bool cqe_ready(RawQueue& q) {
    auto* e = reinterpret_cast<nvme::Cqe*>(q.cq.data()) + q.cq_head;
    return (std::atomic_ref<uint16_t>(e->status).load(std::memory_order_acquire) & 1) == q.phase;
  }
  // Next completion, or nullopt after `t`. Rings the CQ head doorbell unless told not to.
  std::optional<nvme::Cqe> wait(RawQueue& q, std::chrono::milliseconds t = 10s, bool ring = true) {
    auto end = Clock::now() + t;
    while (!cqe_ready(q)) {
      if (Clock::now() > end) return std::nullopt;
      std::this_thread::sleep_for(20us);
    }
    nvme::Cqe c;
    std::memcpy(&c, q.cq.data() + q.cq_head * 16, 16);
    if (++q.cq_head == q.cq_size) {
      q.cq_head = 0;
      q.phase ^= 1;
    }
    if (ring) ring_cq(q);
    return c;
  }
  nvme::Cqe run(RawQueue& q, const nvme::Sqe& cmd) {
    uint16_t cid = submit(q, cmd);
    auto c = wait(q);
    if (!c) throw std::runtime_error("no completion");
    if (c->cid != cid) throw std::runtime_error("completion for another command");
    return *c;
  }
  nvme::Cqe admin(const nvme::Sqe& cmd) { return run(admin_, cmd); }
  nvme::Status admin_status(const nvme::Sqe& cmd) { return status_of(admin(cmd)); }

  // Create CQ qid then SQ qid completing into it; the pair is io(qid) afterwards.
  nvme::Status create_pair(uint16_t qid, uint32_t sq_entries = 64, uint32_t cq_entries = 64) {
    RawQueue q;
    q.qid = qid;
    q.sq_size = sq_entries;
    q.cq_size = cq_entries;
    q.cq = heap_->alloc(cq_entries * 16, page_);
    q.sq = heap_->alloc(sq_entries * 64, page_);
    nvme::Status st = admin_status(nvme::cmd::create_io_cq(qid, cq_entries, q.cq.iova()));
    if (!st.ok()) return st;
    st = admin_status(nvme::cmd::create_io_sq(qid, sq_entries, q.sq.iova(), qid));
    if (st.ok()) io_[qid] = std::move(q);
    return st;
  }
  RawQueue& io(uint16_t qid) { return io_.at(qid); }

 private:
  std::shared_ptr<MmioWindow> bar_;
  std::shared_ptr<DmaHeap> heap_;
  uint32_t dstrd_ = 0;
  size_t page_ = 4096;
  RawQueue admin_;
  std::map<uint16_t, RawQueue> io_;
};

}  // namespace aisio::emu::test
