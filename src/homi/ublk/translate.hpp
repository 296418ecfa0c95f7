// Request translation for homid's ublk server: a ublk request (descriptor of one tag)
// becomes NVMe commands on the queue pair that serves that ublk queue, and their
// completions become the result the kernel expects (bytes for READ/WRITE, 0 for the
// others, a negative errno on failure: never a silent success).
//
//   READ / WRITE   -> Read / Write (FUA kept), split at the queue's max transfer (MDTS)
//   FLUSH          -> Flush
//   DISCARD        -> Dataset Management, one range, attribute Deallocate
//   WRITE_ZEROES   -> Write Zeroes (DEAC unless NOUNMAP), split at 65536 blocks (NLB is 16 bits)
//
// Independent of the kernel plumbing (the server feeds it descriptors it read from the
// mmap()ed array), so it is tested against the software controller on any host.
// Like the QueuePair it drives, a Translator belongs to one thread.
#pragma once
#include <atomic>
#include <cstdint>
#include <vector>

#include "homi/ublk/uapi.hpp"
#include "memory/dma.hpp"
#include "nvme/queue_pair.hpp"

namespace aisio::homi::ublk {

// The errno ublk_drv turns into a block status (as the kernel nvme driver's
// nvme_error_status): -EIO by default, -ENODATA for media errors, -EREMOTEIO for LBA
// out of range, -EOPNOTSUPP for unsupported commands, -ENOSPC for capacity exceeded,
// -EBADE for reservation conflicts, -ETIMEDOUT when no completion came.
int completion_errno(const nvme::Completion& c);

struct NamespaceGeometry {
  uint32_t nsid = 1;
  uint32_t lba_shift = 9;      // log2(LBA size)
  uint64_t nsze = 0;           // blocks
  bool discard = false;        // ONCS Dataset Management
  bool write_zeroes = false;   // ONCS Write Zeroes
};

// Counters of one ublk queue, read by the status thread while the queue thread runs.
struct QueueCounters {
  std::atomic<uint64_t> reads{0}, writes{0}, flushes{0}, discards{0}, write_zeroes{0};
  std::atomic<uint64_t> bytes_read{0}, bytes_written{0}, errors{0}, nvme_commands{0};
};

class Translator {
 public:
  // Called once per request with its result; may queue io_uring work, must not poll().
  using Done = void (*)(void* ctx, uint16_t tag, int32_t result);

  Translator(nvme::QueuePair& qp, const NamespaceGeometry& ns, uint32_t tags, Done done, void* ctx);
  Translator(const Translator&) = delete;
  Translator& operator=(const Translator&) = delete;

  // Starts tag's request; `buf` is the tag's buffer (data of READ/WRITE, the DSM range
  // of a DISCARD). Requests that cannot be valid end at once through done(). Commands
  // that find no free slot wait and go out from poll().
  void start(uint16_t tag, const IoDesc& d, const DmaBuffer& buf);
  // Reaps completions, sends waiting commands, rings the doorbell. Returns CQEs reaped.
  uint32_t poll();
  // After CSTS.CFS: new requests end with -EIO at once (in-flight ones end through the
  // queue pair, which fails them with controller_fatal when it sees CFS).
  void set_failed(bool f) { failed_ = f; }
  bool failed() const { return failed_; }
  // Requests started and not yet ended.
  uint32_t busy() const { return busy_; }
  const QueueCounters& counters() const { return counters_; }

 private:
  struct Tag {
    Translator* self = nullptr;
    const DmaBuffer* buf = nullptr;
    uint16_t tag = 0;
    uint8_t op = 0;
    uint32_t cdw12_flags = 0;     // FUA (read/write), DEAC (write zeroes)
    uint64_t next_lba = 0;        // first block not yet sent
    uint64_t blocks_left = 0;     // blocks not yet sent
    size_t buf_off = 0;           // byte offset of next_lba in buf
    uint32_t outstanding = 0;     // commands sent and not completed
    int32_t error = 0;            // first failure
    uint32_t bytes = 0;           // request size in bytes (READ/WRITE result)
    bool active = false, waiting = false;
  };
  static void piece_done(void* arg, nvme::Completion c);
  void pump(Tag& t);              // send as many of t's commands as slots allow
  void finish(Tag& t, int32_t result);
  void finish_if_done(Tag& t);

  nvme::QueuePair& qp_;
  NamespaceGeometry ns_;
  Done done_;
  void* ctx_;
  uint32_t rw_blocks_;            // blocks per Read/Write command
  std::vector<Tag> tags_;
  std::vector<uint16_t> waiting_; // tags with commands not yet sent, in arrival order
  size_t waiting_head_ = 0;
  uint32_t busy_ = 0;
  bool failed_ = false;
  QueueCounters counters_;
};

}  // namespace aisio::homi::ublk
