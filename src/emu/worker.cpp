#include "emu/worker.hpp"

#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace aisio::emu {

using nvme::Sqe;
using nvme::Status;

namespace {
constexpr unsigned BATCH = 64;  // SQEs per SQ per pass: round-robin arbitration between SQs
}

Worker::Worker(Core& core, unsigned index)
    : core_(core),
      index_(index),
      reader_(core.dma->reader()),
      ctx_(core, counters_),
      idle_(core.cfg.idle) {}

void Worker::start() {
  std::lock_guard lk(mu_);
  if (running_) return;
  stop_.store(false);
  running_ = true;
  thread_ = std::thread([this] { run(); });
  pthread_setname_np(thread_.native_handle(), ("aisio-emu-w" + std::to_string(index_)).c_str());
}

void Worker::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void Worker::add_cq(CqState* cq) { submit(Op::add_cq, cq); }
void Worker::add_sq(SqState* sq) { submit(Op::add_sq, sq); }
void Worker::remove_sq(SqState* sq) { submit(Op::remove_sq, sq); }
void Worker::remove_cq(CqState* cq) { submit(Op::remove_cq, cq); }
void Worker::drop_all() { submit(Op::drop_all, nullptr); }

void Worker::submit(Op op, void* q) {
  std::unique_lock lk(mu_);
  if (!running_) {  // no thread: the caller owns the worker's state
    apply({op, q});
    return;
  }
  requests_.push_back({op, q});
  uint64_t mine = ++submitted_;
  has_requests_.store(true, std::memory_order_release);
  cv_.wait(lk, [&] { return applied_ >= mine; });
}

void Worker::apply(const Request& r) {
  switch (r.op) {
    case Op::add_cq: {
      auto* cq = static_cast<CqState*>(r.q);
      cqs_.push_back(cq);
      // Held completions are bounded by CQ entries; size the ring now, off the I/O path.
      size_t cap = 0;
      for (auto* c : cqs_) cap += c->size;
      if (held_.size() < cap) resize_held(cap);
      break;
    }
    case Op::add_sq: sqs_.push_back(static_cast<SqState*>(r.q)); break;
    case Op::remove_sq: {
      auto* sq = static_cast<SqState*>(r.q);
      DmaSpace::Reader::Section s(reader_);
      begin_section();
      for (size_t i = 0; i < held_count_; ++i) {
        Held& h = held_[(held_head_ + i) % held_.size()];
        if (h.sq != sq) continue;
        complete(*sq, h.cid, 0, Status::make(nvme::sct::GENERIC, nvme::sc::ABORTED_SQ_DELETION));
        h.sq = nullptr;
      }
      sqs_.erase(std::remove(sqs_.begin(), sqs_.end(), sq), sqs_.end());
      break;
    }
    case Op::remove_cq: {
      auto* cq = static_cast<CqState*>(r.q);
      cqs_.erase(std::remove(cqs_.begin(), cqs_.end(), cq), cqs_.end());
      break;
    }
    case Op::drop_all:
      sqs_.clear();
      cqs_.clear();
      held_count_ = 0;
      held_head_ = 0;
      break;
  }
}

void Worker::run() {
  const unsigned mark = 1 + index_;
  IdleBackoff::init_thread();
  core_.thread_alive(mark, true);
  while (!stop_.load(std::memory_order_relaxed)) {
    if (has_requests_.load(std::memory_order_acquire)) {
      std::lock_guard lk(mu_);
      apply_queued();
      has_requests_.store(false, std::memory_order_relaxed);
    }
    uint64_t now = monotonic_ns();
    if (core_.check_halted(mark)) {
      idle_.pass(false, now);
      continue;
    }
    bool busy = poll(now);
    idle_.pass(busy, now, next_due());
  }
  core_.thread_alive(mark, false);
  // Leaving: apply what is queued so no admin call waits forever; later calls apply inline.
  std::lock_guard lk(mu_);
  running_ = false;
  apply_queued();
}

void Worker::apply_queued() {
  for (const Request& r : requests_) apply(r);
  applied_ += requests_.size();
  requests_.clear();
  cv_.notify_all();
}

void Worker::begin_section() {
  for (CqState* cq : cqs_) cq->ring = nullptr;  // ring pointers never outlive a section
}

bool Worker::poll(uint64_t now) {
  DmaSpace::Reader::Section s(reader_);
  begin_section();
  for (CqState* cq : cqs_)
    if (refresh_cq_head(core_.regs, *cq) == Doorbell::invalid)
      core_.doorbell_error(cq->qid, nvme::aer::INFO_INVALID_DOORBELL_VALUE);
  bool busy = post_due(now);
  for (SqState* sq : sqs_) busy |= drain(*sq, now);
  return busy;
}

bool Worker::drain(SqState& sq, uint64_t now) {
  if (refresh_sq_tail(core_.regs, sq) == Doorbell::invalid)
    core_.doorbell_error(sq.qid, nvme::aer::INFO_INVALID_DOORBELL_VALUE);
  CqState& cq = *sq.cq;
  if (sq.head == sq.tail || !cq.can_reserve()) return false;
  // The tail was loaded with acquire above, so the entries up to it are complete.
  auto* ring = reinterpret_cast<const Sqe*>(core_.dma->translate(sq.base, size_t(sq.size) * sizeof(Sqe)));
  if (!ring) {
    core_.raise_fatal("I/O SQ " + std::to_string(sq.qid) + " memory is no longer mapped");
    return false;
  }
  unsigned n = 0;
  while (sq.head != sq.tail && n < BATCH && cq.can_reserve()) {
    Sqe cmd;
    std::memcpy(&cmd, ring + sq.head, sizeof cmd);
    if (++sq.head == sq.size) sq.head = 0;
    ++cq.reserved;  // the completion slot this command will use
    ++n;
    execute(sq, cmd, now);
  }
  return true;
}

void Worker::execute(SqState& sq, const Sqe& cmd, uint64_t now) {
  ctx_.bytes = 0;  // a command failed by injection moves no data (execute_nvm resets it too)
  bool drop = false;
  Outcome o = core_.run_command(counters_, sq.qid, cmd, drop, [&] { return execute_nvm(ctx_, cmd); });
  if (drop) {
    --sq.cq->reserved;
    return;
  }
  if (core_.pacer.enabled()) hold({core_.pacer.due(now, ctx_.bytes), &sq, cmd.cid, o.dw0, o.status});
  else complete(sq, cmd.cid, o.dw0, o.status);
}

void Worker::complete(SqState& sq, uint16_t cid, uint32_t dw0, Status st) {
  CqState& cq = *sq.cq;
  if (!cq.ring) {
    cq.ring = reinterpret_cast<nvme::Cqe*>(core_.dma->translate(cq.base, size_t(cq.size) * sizeof(nvme::Cqe)));
    if (!cq.ring) {
      core_.raise_fatal("I/O CQ " + std::to_string(cq.qid) + " memory is no longer mapped");
      --cq.reserved;
      return;
    }
  }
  post_cqe(cq, sq.qid, uint16_t(sq.head), cid, dw0, st);
}

void Worker::hold(const Held& h) {
  // Cannot happen while rings are sized by add_cq; stay safe.
  if (held_count_ == held_.size()) resize_held(std::max<size_t>(16, held_.size() * 2));
  held_[(held_head_ + held_count_) % held_.size()] = h;
  ++held_count_;
}

void Worker::resize_held(size_t cap) {
  std::vector<Held> n(cap);
  for (size_t i = 0; i < held_count_; ++i) n[i] = held_[(held_head_ + i) % held_.size()];
  held_ = std::move(n);
  held_head_ = 0;
}

bool Worker::post_due(uint64_t now) {
  bool any = false;
  while (held_count_ && held_[held_head_].due_ns <= now) {
    Held h = held_[held_head_];
    held_head_ = (held_head_ + 1) % held_.size();
    --held_count_;
    if (h.sq) complete(*h.sq, h.cid, h.dw0, h.status);
    any = true;
  }
  return any;
}

}  // namespace aisio::emu
