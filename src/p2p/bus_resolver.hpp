// The resolver seam: one small interface that turns device memory exported as a dma-buf
// (GPU memory from cuMemGetHandleForAddressRange) into the bus addresses one NVMe
// controller must use to reach it. Implementations are chosen by the situation
// (make_resolver in choose.hpp; the software controller's aperture in src/gpu), the way
// DmaBackend implementations are: a new kernel interface (iommufd's IOMMU_IOAS_MAP_FILE
// once it accepts GPU dma-bufs) is one more class here and one more row in choose.cpp.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace aisio::p2p {

// Bus addresses are given per 64 KiB page: the GPU page size, the smallest unit a GPU
// mapping is made of.
inline constexpr uint32_t kPageShift = 16;
inline constexpr size_t kPage = size_t(1) << kPageShift;

struct ResolvedRange {
  std::vector<uint64_t> bus;        // bus[i]: bus address of 64 KiB page i of the range
  std::shared_ptr<void> keepalive;  // the mapping lives as long as this
  std::string how;                  // one line for reports
};

class BusResolver {
 public:
  virtual ~BusResolver() = default;
  // va, len: the device memory, 64 KiB aligned. dmabuf_fd: its dma-buf, or -1 when the
  // export failed (resolvers that need it throw). The caller keeps ownership of the fd
  // and may close it once this returns: a resolver that needs it longer dup()s it.
  virtual ResolvedRange resolve(uint64_t va, size_t len, int dmabuf_fd) = 0;
  virtual bool needs_dmabuf() const = 0;
  virtual std::string name() const = 0;
};

// One DMA address segment of an imported dma-buf.
struct DmaSegment {
  uint64_t addr = 0, len = 0;
};

// The address of every `page_size` page of the first `len` bytes of a buffer whose
// segments, in buffer order, are `segs`. Throws Error(protocol), naming `who`, when a
// segment is not aligned to page_size or the segments cover less than `len`.
std::vector<uint64_t> page_table(const std::vector<DmaSegment>& segs, size_t len, size_t page_size,
                                 const std::string& who);

}  // namespace aisio::p2p
