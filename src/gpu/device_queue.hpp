// Backend gpu: device-initiated I/O. GPU threads submit and complete the commands
// (command_list.hpp), so this "queue" is a launcher with the verbs of every backend
// (queue.hpp): submit() collects a read, flush() runs every collected read in one kernel
// over `queues` queue pairs x `threads` threads and waits for it, reap() hands each
// request its status word (gpu::st). A queue the kernel left broken by a timeout is
// recreated before the next flush.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gpu/command_list.hpp"
#include "gpu/queues.hpp"

namespace aisio::gpu {

struct DeviceRequest {
  ListCommand cmd{};
};

class DeviceQueue {
 public:
  using Request = DeviceRequest;
  using Result = uint32_t;  // st:: status word

  // Queue pairs on g's controller, made on the calling thread's current device.
  DeviceQueue(std::shared_ptr<GpuController> g, uint32_t queues, uint32_t threads, uint32_t nsid, const DmaBuffer& data)
      : qs_(std::move(g), QueueSetOptions{queues, threads + 1}), runner_(qs_, threads), nsid_(nsid), data_(data) {}

  template <class H>
  bool submit(Request& r) {
    pending_.push_back(&r);
    return true;
  }
  // One kernel over every collected read; throws aisio::Error for CUDA failures.
  int flush() {
    if (pending_.empty()) return 0;
    cmds_.clear();
    for (auto* r : pending_) cmds_.push_back(r->cmd);
    ListResult lr = runner_.run(0x02, nsid_, cmds_, data_);
    status_ = std::move(lr.status);
    ran_.swap(pending_);
    pending_.clear();
    if (lr.timeouts) {
      // A timed-out queue is broken; recreate every queue for the next flush. Admin
      // commands: one GPU slot at a time.
      static std::mutex admin;
      std::lock_guard lk(admin);
      for (uint32_t q = 0; q < qs_.count(); ++q) qs_.recreate(q);
    }
    return 0;
  }
  template <class H>
  unsigned reap() {
    unsigned n = unsigned(ran_.size());
    for (size_t i = 0; i < ran_.size(); ++i) H::done(*ran_[i], status_[i]);
    ran_.clear();
    return n;
  }
  uint32_t in_flight() const { return uint32_t(pending_.size() + ran_.size()); }
  uint32_t capacity() const { return UINT32_MAX; }  // a list as long as the batch
  uint32_t queues() const { return qs_.count(); }

 private:
  QueueSet qs_;
  CommandRunner runner_;  // over qs_: goes first
  uint32_t nsid_;
  const DmaBuffer& data_;
  std::vector<Request*> pending_, ran_;
  std::vector<uint32_t> status_;
  std::vector<ListCommand> cmds_;
};

}  // namespace aisio::gpu
