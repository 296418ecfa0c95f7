#include "gpu/device_queue.hpp"

#include <mutex>

namespace aisio::gpu {

DeviceQueue::DeviceQueue(std::shared_ptr<GpuController> g, uint32_t queues, uint32_t threads, uint32_t nsid,
                         const DmaBuffer& data, double timeout_ms)
    : qs_(std::make_unique<QueueSet>(std::move(g), QueueSetOptions{queues, threads + 1})),
      runner_(std::make_unique<CommandRunner>(*qs_, threads)),
      nsid_(nsid),
      data_(data),
      timeout_ms_(timeout_ms) {}

DeviceQueue::~DeviceQueue() {
  runner_.reset();
  qs_.reset();  // Delete I/O SQ/CQ before the memory goes
}

int DeviceQueue::flush() {
  if (pending_.empty()) return 0;
  cmds_.clear();
  for (auto* r : pending_) cmds_.push_back(r->cmd);
  ListResult lr = runner_->run(0x02, nsid_, cmds_, data_, timeout_ms_);
  status_ = std::move(lr.status);
  ran_.swap(pending_);
  pending_.clear();
  if (lr.timeouts) {
    // A timed-out queue is broken; recreate every queue for the next flush. Admin
    // commands: one GPU slot at a time.
    static std::mutex admin;
    std::lock_guard lk(admin);
    for (uint32_t q = 0; q < qs_->count(); ++q) qs_->recreate(q);
  }
  return 0;
}

}  // namespace aisio::gpu
