#include "memory/dma.hpp"

#include <sys/mman.h>

#include <cstring>

#include "common/error.hpp"
#include "common/free_ranges.hpp"

namespace aisio {

DmaBuffer& DmaBuffer::operator=(DmaBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    va_ = o.va_;
    len_ = o.len_;
    chunk_va_ = o.chunk_va_;
    bus_ = o.bus_;
    shift_ = o.shift_;
    chunk_index_ = o.chunk_index_;
    heap_ = o.heap_;
    heap_ref_ = std::move(o.heap_ref_);
    o.va_ = nullptr;
    o.heap_ = nullptr;
    o.len_ = 0;
  }
  return *this;
}

void DmaBuffer::reset() {
  if (va_ && heap_) heap_->release(chunk_index_, size_t(va_ - chunk_va_), len_);
  va_ = nullptr;
  heap_ = nullptr;
  len_ = 0;
  heap_ref_.reset();
}

std::shared_ptr<DmaHeap> DmaHeap::create(std::unique_ptr<DmaBackend> backend, size_t grow_bytes) {
  return std::shared_ptr<DmaHeap>(new DmaHeap(std::move(backend), grow_bytes));
}

DmaBuffer DmaHeap::alloc(size_t bytes, size_t align) {
  if (bytes == 0) throw Error(Errc::invalid_argument, "DMA allocation of 0 bytes");
  if (align == 0 || (align & (align - 1)))
    throw Error(Errc::invalid_argument, "DMA alignment must be a power of two");
  bytes = (bytes + 63) & ~size_t(63);  // keep allocations cache-line sized
  std::lock_guard lk(mu_);
  auto try_chunk = [&](uint32_t ci, DmaBuffer& out) {
    Chunk& c = chunks_[ci];
    const auto off = take_range(c.free, bytes, align, uintptr_t(c.map.va));
    if (!off) return false;
    out.va_ = c.map.va + *off;
    out.len_ = bytes;
    out.chunk_va_ = c.map.va;
    out.bus_ = c.map.bus.data();
    out.shift_ = c.map.page_shift;
    out.chunk_index_ = ci;
    out.heap_ = this;
    out.heap_ref_ = shared_from_this();
    return true;
  };
  DmaBuffer b;
  bool found = false;
  for (uint32_t ci = 0; ci < chunks_.size() && !found; ++ci) found = try_chunk(ci, b);
  if (!found) {
    DmaChunk ch = backend_->grow(std::max(grow_bytes_, bytes + align));
    Chunk c;
    c.free.emplace(0, ch.len);
    c.map = std::move(ch);
    chunks_.push_back(std::move(c));
    found = try_chunk(uint32_t(chunks_.size() - 1), b);
    if (!found) throw Error(Errc::no_memory, "DMA backend '" + backend_->name() + "' returned a chunk too small");
  }
  if (auto zero = chunks_[b.chunk_index_].map.zero) zero(b.va_, b.len_);
  else std::memset(b.va_, 0, b.len_);
  return b;
}

void DmaHeap::release(uint32_t ci, size_t off, size_t len) {
  std::lock_guard lk(mu_);
  free_range(chunks_[ci].free, off, len);
}

namespace {
class IdentityBackend final : public DmaBackend {
 public:
  DmaChunk grow(size_t min_bytes) override {
    size_t len = (min_bytes + 4095) & ~size_t(4095);
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw Error(Errc::no_memory, "mmap of " + std::to_string(len) + " bytes failed");
    DmaChunk c;
    c.va = static_cast<uint8_t*>(p);
    c.len = len;
    c.page_shift = 63;
    c.bus = {uint64_t(uintptr_t(p))};
    c.keepalive = std::shared_ptr<void>(p, [len](void* q) { munmap(q, len); });
    return c;
  }
  std::string name() const override { return "identity"; }
};
}  // namespace

std::unique_ptr<DmaBackend> make_identity_backend() { return std::make_unique<IdentityBackend>(); }

}  // namespace aisio
