// One NVMe/TCP queue: a TCP connection carrying one SQ/CQ pair of a fabrics
// controller, with the same submit / ring / poll shape as nvme::QueuePair (the PCIe
// queue), kept apart from it: a workload picks one at compile time.
//
// Life cycle: connect() opens the socket, exchanges ICReq/ICResp (digests, PDU data
// alignment, MAXH2CDATA) and sends Fabrics Connect for the queue id; commands follow.
//
// The I/O path makes no allocation: a command slot (indexed by CID) holds the encoded
// CapsuleCmd header, the data pointer and the progress of its transfer; submit() only
// queues the slot for sending, ring() writes everything queued with one sendmsg, and
// poll() sends what is still queued (R2T answers, the rest of a partial send), reads
// what has arrived with one recv into a staging buffer and decodes it:
//   - writes up to the in-capsule limit (IOCCSZ) travel inside the CapsuleCmd; larger
//     ones wait for the controller's R2T and are sent as H2CData PDUs of at most
//     MAXH2CDATA bytes;
//   - reads arrive as C2HData PDUs copied into the caller's buffer; a C2HData with
//     LAST_PDU and SUCCESS ends the command without a CapsuleResp.
// Data lives in ordinary host memory (no DMA mapping: the kernel copies it).
//
// A broken connection (reset, EOF, a malformed PDU, a termination request, a command
// past its timeout) ends the queue: the socket is closed, every outstanding command
// ends with HostStatus::transport (the one that timed out with HostStatus::timeout),
// and error() tells why. With a Recovery (the Controller sets one on its I/O queues)
// the commands are kept instead and sent again once poll() has reconnected, with
// backoff, until the controller-loss timeout. A queue pair belongs to one thread at a
// time.
#pragma once
#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "nvme/completion.hpp"
#include "spec/commands.hpp"
#include "tcp/decoder.hpp"
#include "tcp/fabrics.hpp"
#include "tcp/pdu.hpp"
#include "tcp/socket.hpp"

namespace aisio::tcp {

struct QueueOptions {
  uint32_t depth = 128;                   // command slots + 1 (SQSIZE is depth - 1, 0-based)
  std::chrono::milliseconds timeout{30000};  // per command, and for connecting
  Digests digests;                        // asked for in the ICReq (the controller may refuse)
  uint32_t kato_ms = 0;                   // Keep Alive Timeout (Connect on the admin queue)
  uint32_t in_capsule_max = 8192;         // bytes of write data sent inside the capsule (IOCCSZ)
  size_t max_transfer = 1u << 20;         // bytes per command
};

struct QueueStats {
  uint64_t submitted = 0;
  uint64_t completed = 0;
  uint64_t sends = 0;      // sendmsg calls that moved bytes
  uint64_t recvs = 0;      // recv calls that moved bytes
  uint64_t r2ts = 0;
  uint64_t h2c_pdus = 0;
  uint64_t c2h_pdus = 0;
};

// What a queue does when its connection breaks (set_recovery).
struct Recovery {
  std::function<void(class QueuePair&)> reconnect;  // reattach()es the queue, or throws
  std::chrono::milliseconds loss_timeout{0};        // give up this long after the break
  std::chrono::milliseconds first_delay{100};       // before the first attempt; doubles
  std::chrono::milliseconds max_delay{2000};
};

// Who to connect to, as whom.
struct ConnectTarget {
  Address addr;
  HostIdentity host;
  uint16_t qid = 0;
  uint16_t cntlid = fabrics::DYNAMIC_CNTLID;  // the admin queue's controller, for I/O queues
};

class QueuePair {
 public:
  // Connects the queue (TCP, ICReq/ICResp, Fabrics Connect). Blocking; throws
  // aisio::Error: system (refused), timeout, protocol (a bad ICResp), nvme_status
  // (the controller refused the Connect).
  static std::unique_ptr<QueuePair> connect(const ConnectTarget& t, const QueueOptions& o);
  // Over a connected socket (tests: one end of a socketpair); ICReq/ICResp and Connect
  // as connect() does.
  static std::unique_ptr<QueuePair> over(Fd fd, const ConnectTarget& t, const QueueOptions& o);
  ~QueuePair() = default;
  QueuePair(const QueuePair&) = delete;
  QueuePair& operator=(const QueuePair&) = delete;

  uint16_t qid() const { return qid_; }
  uint16_t cntlid() const { return cntlid_; }  // from the Connect response (admin queue)
  uint32_t depth() const { return depth_; }
  uint32_t capacity() const { return depth_ - 1; }
  uint32_t in_flight() const { return capacity() - nfree_; }
  size_t max_transfer() const { return max_transfer_; }
  uint32_t in_capsule_max() const { return in_capsule_max_; }
  Digests digests() const { return dg_; }
  bool connected() const { return fd_ && !dead_ && !recovering_; }
  bool recovering() const { return recovering_; }
  uint64_t reconnects() const { return reconnects_; }
  const QueueOptions& options() const { return o_; }
  // Why the connection ended (Errc and message), when it has.
  const std::optional<Error>& error() const { return error_; }
  const QueueStats& stats() const { return stats_; }

  // Queues a command whose data is [data, data + len) in host memory (len 0: none).
  // DPTR is set here (an SGL the transport understands); the direction comes from the
  // opcode. Returns false when every slot is in use. Throws Error(io) once the
  // connection has ended, Error(invalid_argument) for len over max_transfer().
  bool submit(const nvme::Sqe& sqe, void* data, uint32_t len, nvme::IoCallback cb, void* arg) {
    if (nfree_ == 0) [[unlikely]] return false;
    if (dead_) [[unlikely]] throw_dead();
    const uint16_t cid = free_[--nfree_];
    prepare(cid, sqe, static_cast<uint8_t*>(data), len, cb, arg);
    tx_push(cid, kTxCapsule);
    return true;
  }
  bool submit_io(uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb, void* data, uint32_t lba_size,
                 nvme::IoCallback cb, void* arg) {
    nvme::Sqe s{};
    s.opc = opc;
    s.nsid = nsid;
    s.cdw10 = uint32_t(slba);
    s.cdw11 = uint32_t(slba >> 32);
    s.cdw12 = nlb - 1;
    return submit(s, data, nlb * lba_size, cb, arg);
  }
  // Sends everything queued (as much as the socket takes now; poll() sends the rest).
  void ring() {
    if (tx_head_ != tx_tail_) pump_tx();
  }
  // Sends what is pending, reads what has arrived; calls completion callbacks; returns
  // how many commands ended. Never throws: a failure ends the connection (error()).
  uint32_t poll();

  // Synchronous: submit, ring and poll until the command ends. Throws Error(io /
  // protocol / timeout) when the connection ends first. dw1: the CQE's DW1 (Property Get).
  nvme::Completion execute(const nvme::Sqe& sqe, void* data = nullptr, uint32_t len = 0, uint32_t* dw1 = nullptr);

  // Closes the connection as a failure would (tests, fault handling).
  void fail(const Error& why);
  // Keep outstanding commands across a broken connection (see Recovery).
  void set_recovery(Recovery r) { recovery_ = std::move(r); }
  // Re-establishes the queue on a new connection (ICReq, Connect with t.cntlid), then
  // sends every outstanding command again. Throws as connect() does.
  void reattach(Fd fd, const ConnectTarget& t);

 private:
  enum SlotState : uint8_t { kFree, kBusy };
  enum TxKind : uint8_t { kTxCapsule, kTxH2C };
  struct Slot {
    nvme::IoCallback cb = nullptr;
    void* arg = nullptr;
    uint8_t* data = nullptr;
    uint32_t len = 0;
    uint32_t inline_len = 0;       // bytes of data inside the capsule
    uint32_t received = 0;         // C2HData bytes so far
    uint32_t r2t_off = 0, r2t_left = 0;  // the part of the current R2T not yet queued
    uint32_t h2c_off = 0, h2c_len = 0;   // the H2CData PDU queued now
    uint16_t ttag = 0;
    uint32_t epoch = 0;
    SlotState state = kFree;
    bool write = false;
    uint32_t hdr_len = 0, h2c_hdr_len = 0;
    uint32_t ddgst = 0, h2c_ddgst = 0;
    alignas(8) uint8_t hdr[256];      // CapsuleCmd header, digest, padding up to PDO (< 256)
    alignas(8) uint8_t h2c_hdr[256];
  };
  struct TxItem {
    uint16_t cid;
    TxKind kind;
  };
  struct Rx;  // the decoder's handler

  QueuePair(Fd fd, const ConnectTarget& t, const QueueOptions& o);
  void handshake(const ConnectTarget& t);
  uint32_t poll_io();            // poll() without the recovery step
  void recover();                // poll() while recovering: a reconnect attempt when due
  void give_up();                // end every outstanding command (HostStatus::transport)
  void prepare(uint16_t cid, const nvme::Sqe& sqe, uint8_t* data, uint32_t len, nvme::IoCallback cb, void* arg);
  void tx_push(uint16_t cid, TxKind k) {
    tx_[tx_tail_ & tx_mask_] = {cid, k};
    ++tx_tail_;
    ++(k == kTxCapsule ? stats_.submitted : stats_.h2c_pdus);
  }
  void drop_tx() {  // forget every queued PDU (the connection that would carry them is gone)
    tx_head_ = tx_tail_ = 0;
    tx_sent_ = 0;
  }
  void queue_h2c(uint16_t cid);
  uint32_t tx_parts(TxItem it, iovec (&parts)[3]);  // an item's header, data and data digest
  void pump_tx();                // one sendmsg over the queued PDUs
  uint32_t pump_rx();            // one recv, decoded
  void complete(uint16_t cid, nvme::Completion c);
  uint16_t spare_cid() const { return uint16_t(depth_ - 1); }  // never handed out: Connect's
  void tick();                   // command timeouts, rate limited
  [[noreturn]] void throw_dead() const;

  Fd fd_;
  uint16_t qid_;
  uint16_t cntlid_ = 0;
  uint32_t depth_;
  size_t max_transfer_;
  uint32_t in_capsule_max_;
  uint32_t maxh2cdata_ = 0;
  uint8_t cpda_ = 0;
  Digests dg_;
  std::chrono::milliseconds timeout_;
  bool dead_ = false;
  std::optional<Error> error_;
  QueueOptions o_;
  Recovery recovery_;
  bool recovering_ = false;
  Clock::time_point loss_deadline_{}, next_try_{};
  std::chrono::milliseconds delay_{0};
  uint64_t reconnects_ = 0;

  Decoder rx_;
  std::vector<uint8_t> rx_buf_;
  std::vector<Slot> slots_;
  std::vector<uint16_t> free_;
  uint32_t nfree_ = 0;
  std::vector<TxItem> tx_;
  uint32_t tx_mask_ = 0;
  uint64_t tx_head_ = 0, tx_tail_ = 0;
  size_t tx_sent_ = 0;           // bytes of the head item already sent
  std::vector<iovec> iov_;
  uint32_t completed_now_ = 0;   // completions during one poll

  Clock::time_point last_scan_{};
  uint32_t scan_epoch_ = 0;
  uint32_t polls_since_tick_ = 0;
  QueueStats stats_;
  nvme::Cqe last_cqe_{};         // for execute(): the CQE's DW1
};

}  // namespace aisio::tcp
