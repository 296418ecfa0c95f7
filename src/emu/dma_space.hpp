// The device's view of host memory: a table of mapped regions addressed by bus
// addresses, and a DmaBackend that gives the host driver memory inside it.
//
// Bus address = (uint64(slot + 1) << 40) | offset, 256 slots of up to 1 TiB each.
// translate() never faults: anything not wholly inside one mapped region is nullptr,
// which the controller turns into a Data Transfer Error (or a fatal status for queue
// memory). Device threads translate inside a Reader::Section; unmap() returns only after
// every section that could have seen the region has ended, so the memory it releases is
// never touched again by a device thread.
//
// Device-memory regions (the GPU aperture): map_device() enters memory the device
// threads cannot dereference (GPU memory, given by its CUDA device address). Bytes move
// in and out of it only through the DeviceMemoryOps its owner installs (the gpu library
// installs cudaMemcpy-based ones), so src/emu never depends on CUDA. Such a region may
// only be the target of data transfers: translate(), used for queues, PRP lists and SGL
// segments, refuses it (a queue placed there is a fatal error, as on hardware that
// cannot reach the memory); translate_data() accepts it and says which ops move it.
#pragma once
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "memory/dma.hpp"

namespace aisio::emu {

// How the device threads move bytes to and from a device-memory region. Called from
// the controller's I/O threads, inside their DMA section, synchronously: when a call
// returns the bytes have moved.
struct DeviceMemoryOps {
  void (*to_device)(void* ctx, uint8_t* dev_dst, const uint8_t* host_src, size_t n) = nullptr;
  void (*from_device)(void* ctx, uint8_t* host_dst, const uint8_t* dev_src, size_t n) = nullptr;
  void* ctx = nullptr;
};

class DmaSpace {
 public:
  static constexpr unsigned SLOTS = 256;
  static constexpr unsigned OFFSET_BITS = 40;
  static constexpr uint64_t MAX_REGION = uint64_t(1) << OFFSET_BITS;
  static constexpr unsigned MAX_READERS = 128;

  DmaSpace() = default;
  DmaSpace(const DmaSpace&) = delete;
  DmaSpace& operator=(const DmaSpace&) = delete;
  ~DmaSpace();

  // Map [va, va + len); keepalive is released once the region is unmapped and no
  // device thread can still be using it. Throws when all slots are in use.
  uint64_t map(uint8_t* va, size_t len, std::shared_ptr<void> keepalive);
  // Map device memory [va, va + len) (an address the device threads never dereference)
  // whose bytes move through `ops`; ops must stay valid until the region is unmapped
  // (keep it alive through keepalive).
  uint64_t map_device(uint8_t* va, size_t len, std::shared_ptr<void> keepalive, const DeviceMemoryOps* ops);
  // Must not be called from inside a Section of the calling thread (it would wait on itself).
  void unmap(uint64_t bus_base);
  // Host pointer for [bus, bus + len), or nullptr unless wholly inside one mapped region.
  // Device-memory regions are refused (nullptr): see map_device().
  uint8_t* translate(uint64_t bus, size_t len) const {
    const DeviceMemoryOps* ops = nullptr;
    uint8_t* p = translate_data(bus, len, &ops);
    return ops ? nullptr : p;
  }
  // For data transfers: host memory (*ops = nullptr) or device memory (*ops = how to
  // move its bytes; the pointer is a device address, never to be dereferenced).
  uint8_t* translate_data(uint64_t bus, size_t len, const DeviceMemoryOps** ops) const {
    uint64_t slot = (bus >> OFFSET_BITS) - 1;  // bus 0 wraps to a huge slot: rejected below
    if (slot >= SLOTS) return nullptr;
    const Slot& s = slots_[slot];
    // seq_cst pairs with unmap(): see Reader::Section.
    if (!s.valid.load(std::memory_order_seq_cst)) return nullptr;
    uint64_t off = bus & (MAX_REGION - 1);
    size_t l = s.len.load(std::memory_order_relaxed);
    if (off > l || len > l - off) return nullptr;
    *ops = s.ops.load(std::memory_order_relaxed);
    return s.va.load(std::memory_order_relaxed) + off;
  }
  size_t mapped_regions() const;

  // A registered device thread. Sections must be short (one batch of commands) and
  // must not nest; pointers from translate() are valid until the section ends.
  class Reader {
   public:
    Reader() = default;
    Reader(Reader&& o) noexcept : space_(o.space_), idx_(o.idx_) { o.space_ = nullptr; }
    Reader& operator=(Reader&& o) noexcept;
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;
    ~Reader() { release(); }

    class Section {
     public:
      explicit Section(const Reader& r) : slot_(r.space_->readers_[r.idx_].active) {
        // seq_cst store, then seq_cst loads of Slot::valid: either unmap() sees this
        // reader active and waits, or this reader sees the region already invalid.
        slot_.store(r.space_->epoch_.load(std::memory_order_seq_cst), std::memory_order_seq_cst);
      }
      ~Section() { slot_.store(0, std::memory_order_release); }  // release: our accesses end first
      Section(const Section&) = delete;
      Section& operator=(const Section&) = delete;

     private:
      std::atomic<uint64_t>& slot_;
    };

   private:
    friend class DmaSpace;
    void release();
    DmaSpace* space_ = nullptr;
    unsigned idx_ = 0;
  };
  Reader reader();

 private:
  struct Slot {
    std::atomic<bool> valid{false};
    std::atomic<uint8_t*> va{nullptr};
    std::atomic<size_t> len{0};
    std::atomic<const DeviceMemoryOps*> ops{nullptr};  // non-null: a device-memory region
    bool used = false;                // guarded by mu_
    std::shared_ptr<void> keepalive;  // guarded by mu_
  };
  struct alignas(64) ReaderSlot {
    std::atomic<uint64_t> active{0};  // epoch the reader entered its section at; 0 = outside
    bool used = false;                // guarded by mu_
  };
  mutable std::mutex mu_;
  std::array<Slot, SLOTS> slots_;
  std::array<ReaderSlot, MAX_READERS> readers_;
  std::atomic<uint64_t> epoch_{1};
  uint64_t map_slot(uint8_t* va, size_t len, std::shared_ptr<void> keepalive, const DeviceMemoryOps* ops);
  unsigned next_slot_ = 0;  // round-robin so a freed slot (and its stale bus addresses) is reused last
};

// DMA memory for a driver talking to an in-process SoftController: each chunk is a
// memfd mapped MAP_SHARED and entered into the DmaSpace (one region, page_shift 63).
class EmuDmaBackend final : public DmaBackend {
 public:
  explicit EmuDmaBackend(std::shared_ptr<DmaSpace> space, std::string name = "emu");
  DmaChunk grow(size_t min_bytes) override;
  std::string name() const override { return name_; }

 private:
  std::shared_ptr<DmaSpace> space_;
  std::string name_;
};

}  // namespace aisio::emu
