// Device-side state of submission and completion queues, and the two ring operations
// that touch host memory: fetching an SQE and posting a CQE.
//
// A queue belongs to exactly one device thread at a time (the admin thread for queue 0,
// otherwise the worker that owns its CQ), so none of this needs locks.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstring>

#include "emu/register_file.hpp"
#include "spec/commands.hpp"
#include "spec/status.hpp"

namespace aisio::emu {

struct CqState {
  uint16_t qid = 0;
  uint32_t size = 0;        // entries
  uint64_t base = 0;        // bus address, physically contiguous (CAP.CQR = 1)
  uint32_t db_off = 0;      // head doorbell offset in BAR0
  uint32_t tail = 0;        // next entry the device writes
  uint32_t head = 0;        // last head the host released
  uint32_t db_seen = 0;     // last raw doorbell value, so a bad value is reported once
  uint32_t reserved = 0;    // entries promised to fetched commands not yet completed
  uint16_t phase = 1;       // phase tag of the current pass
  bool ien = false;
  uint16_t iv = 0;
  uint32_t sq_count = 0;    // SQs completing here (admin bookkeeping)
  nvme::Cqe* ring = nullptr;  // host pointer, valid only inside the current DMA section

  uint32_t used() const { return (tail + size - head) % size; }
  // Full means tail + 1 == head: one entry always stays empty. Never overwrite an entry
  // the host has not consumed, so fetch only when a completion slot can be promised.
  bool can_reserve() const { return used() + reserved + 1 < size; }
};

struct SqState {
  uint16_t qid = 0;
  uint16_t cqid = 0;
  uint32_t size = 0;
  uint64_t base = 0;
  uint32_t db_off = 0;      // tail doorbell offset in BAR0
  uint32_t head = 0;        // next entry the device fetches
  uint32_t tail = 0;        // last valid tail the host wrote
  uint32_t db_seen = 0;
  CqState* cq = nullptr;
};

enum class Doorbell { unchanged, updated, invalid };

// Acquire load of the tail doorbell: SQEs the host wrote before ringing are visible.
inline Doorbell refresh_sq_tail(const RegisterFile& regs, SqState& sq) {
  uint32_t v = regs.load(sq.db_off);
  if (v == sq.db_seen) return Doorbell::unchanged;
  sq.db_seen = v;
  if (v >= sq.size) return Doorbell::invalid;  // ignored: the tail stays where it was
  sq.tail = v;
  return Doorbell::updated;
}

// Acquire load of the head doorbell: the host is done reading the entries it releases.
// A head beyond the queue, or one that releases entries not yet posted, is invalid.
inline Doorbell refresh_cq_head(const RegisterFile& regs, CqState& cq) {
  uint32_t v = regs.load(cq.db_off);
  if (v == cq.db_seen) return Doorbell::unchanged;
  cq.db_seen = v;
  if (v >= cq.size || (v + cq.size - cq.head) % cq.size > cq.used()) return Doorbell::invalid;
  cq.head = v;
  return Doorbell::updated;
}

// Post into a reserved entry; cq.ring must be valid in the caller's DMA section.
inline void post_cqe(CqState& cq, uint16_t sqid, uint16_t sqhd, uint16_t cid, uint32_t dw0, nvme::Status st) {
  nvme::Cqe* e = cq.ring + cq.tail;
  e->dw0 = dw0;
  e->dw1 = 0;
  e->sqhd = sqhd;
  e->sqid = sqid;
  e->cid = cid;
  // Release store of the status word: the payload above is visible before the new
  // phase tag tells the host the entry is valid.
  std::atomic_ref<uint16_t>(e->status)
      .store(uint16_t((st.field & 0x7FFFu) << 1 | cq.phase), std::memory_order_release);
  if (++cq.tail == cq.size) {
    cq.tail = 0;
    cq.phase ^= 1;
  }
  --cq.reserved;
}

}  // namespace aisio::emu
