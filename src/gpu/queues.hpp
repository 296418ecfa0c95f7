// Host provisioning of NVMe queue pairs that GPU threads drive (device/nvme_queue.cuh).
//
// Where things live:
//   PCIe controller: SQ, CQ and PRP lists in GPU memory (reached by the controller
//     through the bus addresses src/p2p resolves); BAR0 registered with
//     cudaHostRegister(cudaHostRegisterIoMemory | Mapped), so GPU stores to doorbells
//     are MMIO writes.
//   Software controller (in this process): its threads cannot read GPU memory, so SQ,
//     CQ and PRP lists are host memory pinned and mapped for the GPU (cudaHostAlloc),
//     entered into the controller's DmaSpace; its register page is registered with
//     cudaHostRegister(Mapped). Data buffers are GPU memory either way.
// The queues are created on the controller with Create I/O CQ/SQ at those bus
// addresses (nvme::Controller::create_io_queue_at) and deleted in the destructor.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gpu/cuda.hpp"
#include "gpu/device/nvme_types.hpp"
#include "gpu/memory.hpp"
#include "memory/dma.hpp"

namespace aisio::nvme {
class Controller;
}

namespace aisio::gpu {

// One NVMe controller as seen from one GPU. One per (controller, CUDA device) and process
// (open() returns the same object while it lives): each GPU has its own heaps.
class GpuController {
 public:
  static std::shared_ptr<GpuController> open(std::shared_ptr<nvme::Controller> ctrl, int cuda_device = 0);
  ~GpuController();
  GpuController(const GpuController&) = delete;
  GpuController& operator=(const GpuController&) = delete;

  nvme::Controller& ctrl() const { return *ctrl_; }
  const std::shared_ptr<nvme::Controller>& controller() const { return ctrl_; }
  int device() const { return device_; }
  // GPU memory the controller reaches (data buffers).
  const std::shared_ptr<DmaHeap>& data_heap();
  // Queue memory (SQ, CQ, PRP lists): host-pinned (software) or GPU memory (PCIe).
  const std::shared_ptr<DmaHeap>& queue_heap();
  bool queues_in_gpu_memory() const { return !software_; }
  // Device-visible address of a register in BAR0 (registers BAR0 on first use).
  uint32_t* doorbell(uint32_t offset);
  // Device-visible address of byte `off` of a buffer from either heap.
  void* device_ptr(const DmaBuffer& b, size_t off = 0) const;
  // Host bytes into a buffer from either heap.
  void upload(const DmaBuffer& dst, size_t off, const void* src, size_t n) const;
  std::string describe() const;

 private:
  GpuController(std::shared_ptr<nvme::Controller> c, int dev);
  std::shared_ptr<nvme::Controller> ctrl_;
  int device_;
  bool software_;  // an in-process software controller: queues in host-pinned memory
  std::mutex mu_;
  std::shared_ptr<DmaHeap> data_, queues_;
  uint8_t* bar_dev_ = nullptr;  // device address of BAR0 once registered
  bool bar_registered_ = false;
};

struct QueueSetOptions {
  uint32_t count = 1;   // queue pairs
  uint32_t depth = 65;  // entries of each SQ and CQ (commands in flight: depth - 1)
};

// `count` queue pairs on one controller, for GPU threads. The views and states live in
// device memory; a kernel gets views() (one block per queue).
class QueueSet {
 public:
  QueueSet(std::shared_ptr<GpuController> g, const QueueSetOptions& o);
  ~QueueSet();
  QueueSet(const QueueSet&) = delete;
  QueueSet& operator=(const QueueSet&) = delete;

  uint32_t count() const { return uint32_t(q_.size()); }
  uint32_t depth() const { return opt_.depth; }
  GpuController& gpu() const { return *g_; }
  const std::vector<QueueView>& host_views() const { return views_; }  // device addresses inside
  const QueueView* views() const { return views_dev_.get(); }         // device memory, count() entries
  QueueState* states() const { return states_dev_.get(); }            // device memory
  std::vector<QueueState> read_states() const;
  uint16_t qid(uint32_t i) const { return q_[i].qid; }
  // After a timeout broke a queue: Delete I/O SQ/CQ, zero the memory, Create again,
  // fresh state. The controller must be responsive again.
  void recreate(uint32_t i);

 private:
  struct Q {
    DmaBuffer sq, cq;
    uint16_t qid = 0;
  };
  void create(uint32_t i);
  void release() noexcept;  // Delete I/O SQ/CQ of the queues created
  std::shared_ptr<GpuController> g_;
  QueueSetOptions opt_;
  std::vector<Q> q_;
  std::vector<QueueView> views_;
  DevPtr<QueueView> views_dev_;
  DevPtr<QueueState> states_dev_;
};

// PRP1/PRP2 for bytes [off, off + len) of `data` (GPU memory), with a PRP list written
// at byte list_off of `lists` (queue memory, one controller page) when the range spans
// more than two pages. The same rules as nvme::build_prp; the list is uploaded with
// GpuController::upload since it may be GPU memory.
void slot_prp(const GpuController& g, const DmaBuffer& data, size_t off, size_t len, const DmaBuffer& lists,
              size_t list_off, uint64_t& prp1, uint64_t& prp2);

}  // namespace aisio::gpu
