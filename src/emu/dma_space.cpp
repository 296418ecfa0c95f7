#include "emu/dma_space.hpp"

#include <sched.h>

#include <thread>

#include "common/error.hpp"
#include "emu/shm.hpp"

namespace aisio::emu {

DmaSpace::~DmaSpace() {
  // Owners (controller, backends) hold shared_ptrs, so no reader or region outlives us.
  for (auto& s : slots_) s.keepalive.reset();
}

uint64_t DmaSpace::map(uint8_t* va, size_t len, std::shared_ptr<void> keepalive) {
  return map_slot(va, len, std::move(keepalive), nullptr);
}

uint64_t DmaSpace::map_device(uint8_t* va, size_t len, std::shared_ptr<void> keepalive, const DeviceMemoryOps* ops) {
  if (!ops || !ops->to_device || !ops->from_device)
    throw Error(Errc::invalid_argument, "device-memory DMA map without copy operations");
  return map_slot(va, len, std::move(keepalive), ops);
}

uint64_t DmaSpace::map_slot(uint8_t* va, size_t len, std::shared_ptr<void> keepalive, const DeviceMemoryOps* ops) {
  if (!va || len == 0) throw Error(Errc::invalid_argument, "DMA map of an empty region");
  if (len > MAX_REGION) throw Error(Errc::invalid_argument, "DMA region larger than 1 TiB");
  std::lock_guard lk(mu_);
  for (unsigned n = 0; n < SLOTS; ++n) {
    unsigned i = (next_slot_ + n) % SLOTS;
    Slot& s = slots_[i];
    if (s.used) continue;
    s.used = true;
    s.keepalive = std::move(keepalive);
    s.va.store(va, std::memory_order_relaxed);
    s.len.store(len, std::memory_order_relaxed);
    s.ops.store(ops, std::memory_order_relaxed);
    s.valid.store(true, std::memory_order_seq_cst);  // publishes va/len to translate()
    next_slot_ = (i + 1) % SLOTS;
    return uint64_t(i + 1) << OFFSET_BITS;
  }
  throw Error(Errc::no_memory, "emulator DMA space full: all 256 regions mapped");
}

void DmaSpace::unmap(uint64_t bus_base) {
  std::shared_ptr<void> release;
  {
    std::lock_guard lk(mu_);
    uint64_t slot = (bus_base >> OFFSET_BITS) - 1;
    if (slot >= SLOTS || (bus_base & (MAX_REGION - 1)) != 0 || !slots_[slot].used)
      throw Error(Errc::invalid_argument, "DMA unmap of an address that is not a mapped region base");
    Slot& s = slots_[slot];
    s.valid.store(false, std::memory_order_seq_cst);
    // Quiescence: new sections see valid == false; wait out those that started earlier.
    uint64_t e = epoch_.fetch_add(1, std::memory_order_seq_cst) + 1;
    for (auto& r : readers_) {
      if (!r.used) continue;
      for (unsigned spins = 0;; ++spins) {
        uint64_t a = r.active.load(std::memory_order_seq_cst);
        if (a == 0 || a >= e) break;
        if (spins < 100) sched_yield();
        else std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
    s.used = false;
    s.va.store(nullptr, std::memory_order_relaxed);
    s.len.store(0, std::memory_order_relaxed);
    s.ops.store(nullptr, std::memory_order_relaxed);
    release = std::move(s.keepalive);
  }
  // release (munmap) outside the lock.
}

size_t DmaSpace::mapped_regions() const {
  std::lock_guard lk(mu_);
  size_t n = 0;
  for (auto& s : slots_) n += s.used;
  return n;
}

DmaSpace::Reader DmaSpace::reader() {
  std::lock_guard lk(mu_);
  for (unsigned i = 0; i < MAX_READERS; ++i) {
    if (readers_[i].used) continue;
    readers_[i].used = true;
    readers_[i].active.store(0, std::memory_order_relaxed);
    Reader r;
    r.space_ = this;
    r.idx_ = i;
    return r;
  }
  throw Error(Errc::no_memory, "too many DMA reader threads");
}

DmaSpace::Reader& DmaSpace::Reader::operator=(Reader&& o) noexcept {
  if (this != &o) {
    release();
    space_ = o.space_;
    idx_ = o.idx_;
    o.space_ = nullptr;
  }
  return *this;
}

void DmaSpace::Reader::release() {
  if (!space_) return;
  std::lock_guard lk(space_->mu_);
  space_->readers_[idx_].active.store(0, std::memory_order_relaxed);
  space_->readers_[idx_].used = false;
  space_ = nullptr;
}

namespace {
// A chunk's lifetime: leave the DMA space (waiting out device threads), then unmap.
struct EmuRegion {
  std::shared_ptr<DmaSpace> space;
  SharedMemory mem;
  uint64_t bus = 0;
  ~EmuRegion() {
    if (bus) space->unmap(bus);
  }
};
}  // namespace

EmuDmaBackend::EmuDmaBackend(std::shared_ptr<DmaSpace> space, std::string name)
    : space_(std::move(space)), name_(std::move(name)) {}

DmaChunk EmuDmaBackend::grow(size_t min_bytes) {
  size_t len = (min_bytes + 4095) & ~size_t(4095);
  auto region = std::make_shared<EmuRegion>();
  region->space = space_;
  region->mem = SharedMemory::create("aisio-emu-dma", len);
  region->bus = space_->map(region->mem.data(), len, nullptr);
  // Members initialise in order: va and bus are read before keepalive takes the region.
  return DmaChunk{.va = region->mem.data(),
                  .len = len,
                  .page_shift = 63,
                  .bus = {region->bus},
                  .keepalive = std::move(region)};
}

}  // namespace aisio::emu
