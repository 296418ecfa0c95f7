// Backend unvme-gpu: our driver, CPU-initiated, data into GPU memory (P2P). The unvme
// backend (backends/unvme.hpp) with its data buffer fixed to one GPU buffer: a request
// is a read of whole LBAs to a byte offset of that buffer (a ListCommand), PRPs built by
// the driver on the GPU memory's bus table. Same verbs as every backend (queue.hpp).
#pragma once
#include "backends/unvme.hpp"
#include "gpu/kernels.hpp"
#include "memory/dma.hpp"

namespace aisio::gpu {

struct UnvmeGpuRequest : backends::UnvmeRequest {
  kern::ListCommand cmd{};  // slba, nlb, len, dst (byte offset in the buffer)
};

class UnvmeGpuQueue {
 public:
  using Request = UnvmeGpuRequest;
  using Result = nvme::Completion;

  // `data`: GPU memory from GpuController::data_heap(), alive as long as the queue.
  UnvmeGpuQueue(const backends::UnvmeTarget& t, uint32_t depth, const DmaBuffer& data) : q_(t, depth), data_(data) {}

  template <class H>
  bool submit(Request& r) {
    return q_.submit_io<Fwd<H>>(r, backends::kRead, r.cmd.slba, r.cmd.nlb, data_, r.cmd.dst);
  }
  int flush() { return q_.flush(); }
  template <class H>
  unsigned reap() {
    return q_.reap<Fwd<H>>();
  }
  uint32_t in_flight() const { return q_.in_flight(); }
  uint32_t capacity() { return q_.queue_pair().capacity(); }

 private:
  template <class H>
  struct Fwd {  // the driver hands back the UnvmeRequest it was given: ours
    static void done(backends::UnvmeRequest& r, nvme::Completion c) { H::done(static_cast<Request&>(r), c); }
  };
  backends::UnvmeQueue q_;
  const DmaBuffer& data_;
};

}  // namespace aisio::gpu
