// DMA memory: host-virtual memory a device can reach, with its bus addresses.
//
// A backend (hugepages + pagemap, vfio IOVA, the software controller's shared memory,
// GPU memory) supplies chunks with a bus-address table at the backend's page
// granularity; DmaHeap carves buffers out of them. Translation is a table lookup with
// no virtual call, so building PRPs on the I/O path stays cheap.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace aisio {

// One mapping supplied by a backend. bus[i] is the bus address of the page at
// va + (i << page_shift). A contiguous chunk has one entry and page_shift = 63.
struct DmaChunk {
  uint8_t* va = nullptr;
  size_t len = 0;
  uint32_t page_shift = 63;
  std::vector<uint64_t> bus;
  std::shared_ptr<void> keepalive;  // releases the mapping when the chunk is dropped
  // Memory the CPU cannot touch (GPU memory): how DmaHeap::alloc zero-fills it. nullptr:
  // plain host memory, zeroed with memset.
  void (*zero)(uint8_t* va, size_t len) = nullptr;
};

class DmaHeap;

// A buffer carved from a chunk. Moves, never copies; returns itself to the heap.
class DmaBuffer {
 public:
  DmaBuffer() = default;
  DmaBuffer(DmaBuffer&& o) noexcept { *this = std::move(o); }
  DmaBuffer& operator=(DmaBuffer&& o) noexcept;
  DmaBuffer(const DmaBuffer&) = delete;
  DmaBuffer& operator=(const DmaBuffer&) = delete;
  ~DmaBuffer() { reset(); }

  uint8_t* data() const { return va_; }
  size_t size() const { return len_; }
  explicit operator bool() const { return va_ != nullptr; }
  template <class T> T* as() const { return reinterpret_cast<T*>(va_); }

  // Bus address of byte `off` of this buffer.
  uint64_t iova(size_t off = 0) const {
    size_t o = size_t(va_ - chunk_va_) + off;
    return bus_[o >> shift_] + (o & ((uint64_t(1) << shift_) - 1));
  }
  bool contains(const void* p, size_t n = 1) const {
    auto* b = static_cast<const uint8_t*>(p);
    return b >= va_ && b + n <= va_ + len_;
  }
  // Bytes from `off` to the end of its backend page (the span that is bus-contiguous).
  size_t contiguous_from(size_t off) const {
    size_t o = size_t(va_ - chunk_va_) + off;
    uint64_t page = uint64_t(1) << shift_;
    return size_t(page - (o & (page - 1)));
  }

  void reset();

 private:
  friend class DmaHeap;
  uint8_t* va_ = nullptr;
  size_t len_ = 0;
  uint8_t* chunk_va_ = nullptr;
  const uint64_t* bus_ = nullptr;
  uint32_t shift_ = 63;
  uint32_t chunk_index_ = 0;
  DmaHeap* heap_ = nullptr;
  std::shared_ptr<DmaHeap> heap_ref_;  // keeps the heap alive while buffers exist
};

// Where chunks come from. grow() returns a chunk of at least min_bytes or throws
// aisio::Error with a message that says how to fix the shortage.
class DmaBackend {
 public:
  virtual ~DmaBackend() = default;
  virtual DmaChunk grow(size_t min_bytes) = 0;
  virtual std::string name() const = 0;
};

// Thread-safe first-fit allocator over backend chunks. Allocation is a control-path
// operation (queues and data buffers are allocated up front), so a mutex is fine.
class DmaHeap : public std::enable_shared_from_this<DmaHeap> {
 public:
  static std::shared_ptr<DmaHeap> create(std::unique_ptr<DmaBackend> backend, size_t grow_bytes = 8u << 20);

  // align must be a power of two; memory is zero-filled.
  DmaBuffer alloc(size_t bytes, size_t align = 4096);
  std::string name() const { return backend_->name(); }
  DmaBackend& backend() { return *backend_; }

 private:
  DmaHeap(std::unique_ptr<DmaBackend> b, size_t grow) : backend_(std::move(b)), grow_bytes_(grow) {}
  friend class DmaBuffer;
  void release(uint32_t chunk, size_t offset, size_t len);

  struct Chunk {
    DmaChunk map;
    std::map<size_t, size_t> free;  // offset -> length, coalesced
  };
  std::unique_ptr<DmaBackend> backend_;
  size_t grow_bytes_;
  mutable std::mutex mu_;
  std::vector<Chunk> chunks_;
};

// Memory the CPU can DMA from plainly (malloc'd, no bus address): for tests of PRP
// construction and for code that only needs a buffer shape. Bus address = virtual.
std::unique_ptr<DmaBackend> make_identity_backend();

}  // namespace aisio
