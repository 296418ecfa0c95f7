// Resolving a command's data pointer (PRP1/PRP2 + PRP lists, or an SGL) into runs of
// host memory, with the status codes the spec gives for malformed pointers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "emu/dma_space.hpp"
#include "spec/commands.hpp"
#include "spec/status.hpp"

namespace aisio::emu {

// A run of memory a command moves. ops == nullptr: host memory the device thread reads
// and writes directly; otherwise device memory (DmaSpace::map_device) moved through ops.
struct Segment {
  uint8_t* p;
  size_t len;
  const DeviceMemoryOps* ops = nullptr;
};

// Reused per device thread: clear() keeps capacity, so steady-state I/O does not allocate.
class SegmentList {
 public:
  void clear() {
    v_.clear();
    total_ = 0;
  }
  void add(uint8_t* p, size_t len, const DeviceMemoryOps* ops = nullptr) {
    if (len == 0) return;
    if (!v_.empty() && v_.back().p + v_.back().len == p && v_.back().ops == ops)
      v_.back().len += len;  // merge adjacent runs of the same kind
    else v_.push_back({p, len, ops});
    total_ += len;
  }
  size_t total() const { return total_; }
  size_t count() const { return v_.size(); }
  const Segment* begin() const { return v_.data(); }
  const Segment* end() const { return v_.data() + v_.size(); }

 private:
  std::vector<Segment> v_;
  size_t total_ = 0;
};

// Host memory <-> a flat buffer, in segment order. n bytes at most. Device-memory
// segments move through their DeviceMemoryOps.
void copy_to_host(const SegmentList& dst, const uint8_t* src, size_t n);
void copy_from_host(const SegmentList& src, uint8_t* dst, size_t n);
bool equal_host(const SegmentList& a, const uint8_t* b);

// PRP1/PRP2 for `len` bytes with memory pages of 1 << page_shift (CC.MPS).
nvme::Status map_prp(const DmaSpace& space, uint64_t prp1, uint64_t prp2, size_t len, uint32_t page_shift,
                     SegmentList& out);
// SGL1 (in DPTR) for exactly `len` bytes: Data Block, Segment and Last Segment descriptors.
nvme::Status map_sgl(const DmaSpace& space, const nvme::Sqe& cmd, size_t len, SegmentList& out);
// Dispatch on CDW0.PSDT. SGLs only where allowed (NVM I/O with SGL support reported).
nvme::Status map_data(const DmaSpace& space, const nvme::Sqe& cmd, size_t len, uint32_t page_shift, bool sgl_allowed,
                      SegmentList& out);

}  // namespace aisio::emu
