// The admin queue and the admin command set. Runs on the controller thread only; I/O
// queue state it creates is handed to the worker that owns the queue's CQ.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "emu/core.hpp"
#include "emu/data_pointer.hpp"
#include "emu/outcome.hpp"
#include "emu/queues.hpp"
#include "emu/stats.hpp"
#include "emu/virtualization.hpp"
#include "emu/worker.hpp"

namespace aisio::emu {

class Admin {
 public:
  Admin(Core& core, std::vector<std::unique_ptr<Worker>>& workers);

  // CC.EN 0 -> 1 with the admin queue registers already validated.
  void enable(uint64_t asq, uint64_t acq, uint32_t asqs, uint32_t acqs);
  // Controller reset (CC.EN 1 -> 0): every queue, pending AER and feature value goes.
  void reset();
  // One pass: admin commands, async event delivery, stray doorbell scan. True if it did work.
  bool poll(uint64_t now_ns);

  uint32_t io_sq_count() const { return n_sqs_.load(std::memory_order_relaxed); }
  uint32_t io_cq_count() const { return n_cqs_.load(std::memory_order_relaxed); }
  const ThreadCounters& counters() const { return counters_; }

 private:
  Outcome execute(const nvme::Sqe& cmd);
  Outcome identify(const nvme::Sqe& cmd);
  Outcome create_cq(const nvme::Sqe& cmd);
  Outcome create_sq(const nvme::Sqe& cmd);
  Outcome delete_sq(const nvme::Sqe& cmd);
  Outcome delete_cq(const nvme::Sqe& cmd);
  Outcome get_features(const nvme::Sqe& cmd);
  Outcome set_features(const nvme::Sqe& cmd);
  Outcome get_log_page(const nvme::Sqe& cmd);
  Outcome async_event_request(const nvme::Sqe& cmd);

  // Copy `len` bytes to the host buffer of cmd (PRP only, as for every admin command).
  nvme::Status to_host(const nvme::Sqe& cmd, const void* data, size_t len, size_t transfer_len);
  void fill_identify_controller(uint8_t* out) const;
  void fill_identify_namespace(const Namespace& ns, uint8_t* out) const;
  bool post(uint16_t cid, uint32_t dw0, nvme::Status st);
  void deliver_events();
  void scan_stray_doorbells();
  Worker& worker_for(uint16_t cqid) { return *workers_[(cqid - 1u) % workers_.size()]; }
  uint32_t sq_limit() const { return queues_allocated_ ? nsqa_ : core_.cfg.max_io_queues; }
  uint32_t cq_limit() const { return queues_allocated_ ? ncqa_ : core_.cfg.max_io_queues; }

  Core& core_;
  std::vector<std::unique_ptr<Worker>>& workers_;
  DmaSpace::Reader reader_;
  SegmentList segs_;
  ThreadCounters counters_;

  bool enabled_ = false;
  SqState asq_;
  CqState acq_;
  std::vector<std::unique_ptr<SqState>> sqs_;  // index qid
  std::vector<std::unique_ptr<CqState>> cqs_;
  std::atomic<uint32_t> n_sqs_{0}, n_cqs_{0};  // read by stats() from other threads
  std::vector<uint16_t> aer_cids_;  // outstanding Asynchronous Event Requests
  uint64_t last_scan_ns_ = 0;

  // Features (current values; reset by a controller reset).
  struct Features {
    uint32_t arbitration = 0;
    uint32_t power_management = 0;
    std::array<uint16_t, 2> temp_threshold{0x157, 0};  // over (343 K), under
    uint32_t volatile_write_cache = 1;
    uint32_t interrupt_coalescing = 0;
    uint32_t write_atomicity = 0;
    uint32_t async_event_config = 0;
  } features_;
  bool queues_allocated_ = false;  // Number of Queues was set since the last reset
  uint32_t nsqa_ = 0, ncqa_ = 0;
  Virtualization virt_;  // SR-IOV primary controller state (kept across resets)
};

}  // namespace aisio::emu
