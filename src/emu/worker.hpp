// An I/O worker thread: owns some completion queues and every SQ that completes into
// them, polls their doorbells, executes NVM commands in batches and posts completions
// (at once, or when the device model says they are due).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "emu/core.hpp"
#include "emu/device_model.hpp"
#include "emu/idle.hpp"
#include "emu/nvm.hpp"
#include "emu/queues.hpp"
#include "emu/stats.hpp"

namespace aisio::emu {

class Worker {
 public:
  Worker(Core& core, unsigned index);
  ~Worker() { stop(); }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  void stop();

  // Control path, called by the admin thread; each returns once the worker applied it,
  // so the caller may then free or reuse the queue state.
  void add_cq(CqState* cq);
  void add_sq(SqState* sq);
  void remove_sq(SqState* sq);  // held completions of sq: Command Aborted due to SQ Deletion
  void remove_cq(CqState* cq);
  void drop_all();              // controller reset: forget every queue and held completion

  const ThreadCounters& counters() const { return counters_; }

 private:
  enum class Op { add_cq, add_sq, remove_sq, remove_cq, drop_all };
  struct Request {
    Op op;
    void* q;
  };
  struct Held {
    uint64_t due_ns;
    SqState* sq;  // nullptr once completed early (SQ deleted)
    uint16_t cid;
    uint32_t dw0;
    nvme::Status status;
  };

  void submit(Op op, void* q);
  void apply(const Request& r);
  void apply_queued();  // with mu_ held: every queued request, then wake the submitters
  void run();
  bool poll(uint64_t now);
  bool drain(SqState& sq, uint64_t now);
  void execute(SqState& sq, const nvme::Sqe& cmd, uint64_t now);
  void complete(SqState& sq, uint16_t cid, uint32_t dw0, nvme::Status st);
  bool post_due(uint64_t now);
  void hold(const Held& h);
  void resize_held(size_t cap);  // keeps the held completions, in order
  uint64_t next_due() const { return held_count_ ? held_[held_head_].due_ns : 0; }
  void begin_section();

  Core& core_;
  unsigned index_;
  ThreadCounters counters_;
  DmaSpace::Reader reader_;
  IoContext ctx_;
  IdleBackoff idle_;

  // Owned by the worker thread (or by the caller while the thread is not running).
  std::vector<SqState*> sqs_;
  std::vector<CqState*> cqs_;
  std::vector<Held> held_;  // FIFO ring: due times are monotonic (see Pacer)
  size_t held_head_ = 0, held_count_ = 0;

  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> has_requests_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool running_ = false;  // guarded by mu_: the thread is there to apply requests
  std::vector<Request> requests_;
  uint64_t submitted_ = 0, applied_ = 0;
};

}  // namespace aisio::emu
