#include "tcp/queue_pair.hpp"

#include <sys/socket.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <thread>

#include <fmt/format.h>

namespace aisio::tcp {

using namespace std::chrono;

namespace {
constexpr size_t kRxBuffer = 256u << 10;
constexpr uint32_t kIovMax = 64;
// Data direction of a command: opcode bits 1:0, or FCTYPE's for a Fabrics command.
bool host_to_controller(const nvme::Sqe& s) { return ((s.opc == fabrics::OPC ? uint8_t(s.nsid) : s.opc) & 3u) == 1u; }

// A synchronous caller's completion: the callback argument it waits on.
struct Wait {
  bool done = false;
  nvme::Completion c;
  static void callback(void* a, nvme::Completion c) {
    auto* w = static_cast<Wait*>(a);
    w->c = c;
    w->done = true;
  }
};
}  // namespace

// The decoder's handler: where C2HData goes, and what each PDU means.
struct QueuePair::Rx {
  QueuePair& q;
  bool ic_expected = false;
  const uint8_t* ic = nullptr;  // the ICResp, during the handshake

  uint8_t* data_target(const uint8_t* h, uint32_t len) {
    const auto& ch = *reinterpret_cast<const CommonHeader*>(h);
    if (ch.type != pdu::C2H_DATA) return nullptr;  // a termination request's copy of a header
    const auto& d = *reinterpret_cast<const DataHeader*>(h);
    Slot* s = d.cccid < q.depth_ ? &q.slots_[d.cccid] : nullptr;
    if (!s || s->state != kBusy || s->write)
      throw Error(Errc::protocol, fmt::format("NVMe/TCP: C2HData for command {}, which is not a read in flight", d.cccid));
    if (uint64_t(d.offset) + len > s->len || d.offset != s->received)
      throw Error(Errc::protocol, fmt::format("NVMe/TCP: C2HData offset {} length {} outside command {}'s {} bytes "
                                              "(expected offset {})", d.offset, len, d.cccid, s->len, s->received));
    return s->data + d.offset;
  }

  void on_pdu(const uint8_t* h) {
    const auto& ch = *reinterpret_cast<const CommonHeader*>(h);
    if (ch.type == pdu::IC_RESP) {
      if (!ic_expected) throw Error(Errc::protocol, "NVMe/TCP: ICResp after the connection was initialised");
      ic_expected = false;
      ic = h;
      return;
    }
    if (ic_expected) throw Error(Errc::protocol, std::string("NVMe/TCP: ") + pdu::type_name(ch.type) + " before ICResp");
    switch (ch.type) {
      case pdu::CAPSULE_RESP: {
        const nvme::Cqe& cqe = reinterpret_cast<const CapsuleResp*>(h)->cqe;
        q.last_cqe_ = cqe;
        const uint16_t cid = cqe.cid;
        if (cid >= q.depth_ || q.slots_[cid].state != kBusy)
          throw Error(Errc::protocol, fmt::format("NVMe/TCP: CapsuleResp for command {}, which is not in flight", cid));
        // The status field without the phase bit, which a fabrics CQE does not use.
        q.complete(cid, nvme::Completion{nvme::Status(uint16_t(cqe.status >> 1)), cqe.dw0, nvme::HostStatus::none});
        return;
      }
      case pdu::C2H_DATA: {
        const auto& d = *reinterpret_cast<const DataHeader*>(h);
        Slot& s = q.slots_[d.cccid];  // checked in data_target
        s.received += d.length;
        ++q.stats_.c2h_pdus;
        if (ch.flags & pdu::SUCCESS) {
          if (!(ch.flags & pdu::LAST_PDU)) throw Error(Errc::protocol, "NVMe/TCP: C2HData with SUCCESS but not LAST_PDU");
          if (s.received != s.len)
            throw Error(Errc::protocol, fmt::format("NVMe/TCP: command {} ended by SUCCESS after {} of {} bytes",
                                                    d.cccid, s.received, s.len));
          q.last_cqe_ = {};
          q.complete(d.cccid, nvme::Completion{});
        }
        return;
      }
      case pdu::R2T: {
        const auto& d = *reinterpret_cast<const DataHeader*>(h);
        Slot* s = d.cccid < q.depth_ ? &q.slots_[d.cccid] : nullptr;
        if (!s || s->state != kBusy || !s->write || s->r2t_left != 0 || s->h2c_len != 0)
          throw Error(Errc::protocol, fmt::format("NVMe/TCP: R2T for command {}, which awaits none", d.cccid));
        if (d.length == 0 || uint64_t(d.offset) + d.length > s->len)
          throw Error(Errc::protocol, fmt::format("NVMe/TCP: R2T offset {} length {} outside command {}'s {} bytes",
                                                  d.offset, d.length, d.cccid, s->len));
        ++q.stats_.r2ts;
        s->r2t_off = d.offset, s->r2t_left = d.length, s->ttag = d.ttag;
        q.queue_h2c(d.cccid);
        return;
      }
      case pdu::C2H_TERM_REQ: {
        const auto& t = *reinterpret_cast<const TermReq*>(h);
        throw Error(Errc::protocol, fmt::format("NVMe/TCP: the controller terminated the connection: {} (FES {}, FEI {})",
                                                pdu::fes_name(t.fes), t.fes, uint32_t(t.fei_lo) | uint32_t(t.fei_hi) << 16));
      }
    }
    throw Error(Errc::protocol, std::string("NVMe/TCP: unexpected ") + pdu::type_name(ch.type));
  }
};

QueuePair::QueuePair(Fd fd, const ConnectTarget& t, const QueueOptions& o)
    : fd_(std::move(fd)),
      qid_(t.qid),
      depth_(o.depth),
      max_transfer_(o.max_transfer),
      in_capsule_max_(o.in_capsule_max),
      timeout_(o.timeout),
      o_(o),
      rx_(Role::host, uint32_t(o.max_transfer)) {
  if (depth_ < 2 || depth_ > 65535) throw Error(Errc::invalid_argument, fmt::format("NVMe/TCP: queue depth {} (2..65535)", depth_));
  if (max_transfer_ == 0 || max_transfer_ > (64u << 20)) throw Error(Errc::invalid_argument, "NVMe/TCP: max_transfer out of range");
  rx_buf_.resize(kRxBuffer);
  slots_.resize(depth_);
  free_.resize(depth_);
  // CIDs depth-2 .. 0 are free (depth - 1 commands at most, as SQSIZE allows).
  nfree_ = depth_ - 1;
  for (uint32_t i = 0; i < nfree_; ++i) free_[i] = uint16_t(nfree_ - 1 - i);
  tx_.resize(std::bit_ceil(depth_));
  tx_mask_ = uint32_t(tx_.size() - 1);
  iov_.resize(kIovMax);
  last_scan_ = Clock::now();
}

std::unique_ptr<QueuePair> QueuePair::connect(const ConnectTarget& t, const QueueOptions& o) {
  Fd fd = connect_tcp(t.addr.host, t.addr.port, Clock::now() + o.timeout);
  return over(std::move(fd), t, o);
}

std::unique_ptr<QueuePair> QueuePair::over(Fd fd, const ConnectTarget& t, const QueueOptions& o) {
  std::unique_ptr<QueuePair> q(new QueuePair(std::move(fd), t, o));
  q->handshake(t);
  return q;
}

void QueuePair::handshake(const ConnectTarget& t) {
  const QueueOptions& o = o_;
  const auto deadline = Clock::now() + timeout_;
  const std::string where = t.addr.describe();
  alignas(8) uint8_t ic[pdu::IC_HLEN];
  encode_ic_req(ic, 0, o.digests, 0);  // HPDA 0, one R2T per command
  send_all(fd_.get(), ic, sizeof ic, deadline, "ICReq to " + where);
  Rx rx{*this, true};
  uint8_t buf[pdu::IC_HLEN];
  size_t got = 0;
  while (rx.ic_expected) {
    if (!wait_readable(fd_.get(), deadline)) throw Error(Errc::timeout, "NVMe/TCP: no ICResp from " + where);
    // Only the ICResp's bytes: whatever follows is decoded with the negotiated digests.
    ssize_t k = ::recv(fd_.get(), buf, sizeof buf - got, MSG_DONTWAIT);
    if (k == 0) throw Error(Errc::io, "NVMe/TCP: " + where + " closed the connection during ICReq");
    if (k < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      throw_errno("NVMe/TCP: recv ICResp from " + where);
    }
    got += size_t(k);
    rx_.feed(buf, size_t(k), rx);
  }
  const auto& r = *reinterpret_cast<const IcReq*>(rx.ic);
  if (r.pfv != 0) throw Error(Errc::protocol, fmt::format("NVMe/TCP: ICResp PFV {} (only 0 is known)", r.pfv));
  const Digests granted{bool(r.dgst & pdu::DGST_HDGST), bool(r.dgst & pdu::DGST_DDGST)};
  if ((granted.header && !o.digests.header) || (granted.data && !o.digests.data))
    throw Error(Errc::protocol, "NVMe/TCP: ICResp enables a digest the host did not ask for");
  if (r.maxr2t < 4096 || r.maxr2t % 4)
    throw Error(Errc::protocol, fmt::format("NVMe/TCP: ICResp MAXH2CDATA {} (at least 4096, a multiple of 4)", r.maxr2t));
  if (r.pda > 31) throw Error(Errc::protocol, fmt::format("NVMe/TCP: ICResp CPDA {} (at most 31)", r.pda));
  dg_ = granted;
  cpda_ = r.pda;
  maxh2cdata_ = r.maxr2t;
  rx_.set_digests(dg_);

  // Fabrics Connect; its 1 KiB of data travels in the capsule, on the spare CID (every
  // other slot may hold a command waiting to be sent again after a reconnect).
  const uint16_t sqsize = uint16_t(depth_ - 1);
  fabrics::ConnectData cd = fabrics::connect_data(t.host.id, t.cntlid, t.addr.subnqn, t.host.nqn);
  Wait w;
  const uint16_t cid = spare_cid();
  const uint32_t keep = in_capsule_max_;
  in_capsule_max_ = std::max<uint32_t>(in_capsule_max_, fabrics::CONNECT_DATA_LEN);
  prepare(cid, fabrics::connect(qid_, sqsize, qid_ == 0 ? o.kato_ms : 0), reinterpret_cast<uint8_t*>(&cd), sizeof cd,
          Wait::callback, &w);
  in_capsule_max_ = keep;
  tx_push(cid, kTxCapsule);
  pump_tx();
  while (!w.done && fd_ && !dead_) {
    if (poll_io() || w.done || !fd_) continue;
    if (!wait_readable(fd_.get(), std::min(deadline, Clock::now() + milliseconds(50))) && Clock::now() >= deadline)
      fail(Error(Errc::timeout, fmt::format("NVMe/TCP: no answer to Connect for queue {} from {}", qid_, where)));
  }
  slots_[cid].state = kFree;  // the spare slot never enters the free list
  if (!w.done || w.c.host != nvme::HostStatus::none) {
    if (error_) throw *error_;
    throw Error(Errc::io, fmt::format("NVMe/TCP: Connect for queue {} to {} failed", qid_, where));
  }
  if (!w.c.ok()) throw Error(w.c.status, fmt::format("NVMe/TCP: {} refused Connect for queue {}", where, qid_));
  cntlid_ = uint16_t(w.c.dw0);
}

void QueuePair::reattach(Fd fd, const ConnectTarget& t) {
  fd_ = std::move(fd);
  rx_ = Decoder(Role::host, uint32_t(max_transfer_));
  drop_tx();
  handshake(t);  // throws; the queue stays recovering
  completed_now_ = 0;  // Connect's completion is not one of the caller's commands
  recovering_ = false;
  error_.reset();
  ++reconnects_;
  // Every command still outstanding goes again, re-encoded for this connection's
  // digests and alignment, with its transfer state and timeout clock reset.
  for (uint32_t cid = 0; cid + 1 < depth_; ++cid) {
    Slot& s = slots_[cid];
    if (s.state != kBusy) continue;
    nvme::Sqe cmd;
    std::memcpy(&cmd, s.hdr + sizeof(CommonHeader), sizeof cmd);
    s.received = 0, s.r2t_left = 0, s.h2c_len = 0;
    s.epoch = scan_epoch_;
    s.hdr_len = encode_capsule_cmd(s.hdr, cmd, s.inline_len, dg_, cpda_);
    if (s.inline_len && dg_.data) s.ddgst = crc32c(s.data, s.inline_len);
    tx_push(uint16_t(cid), kTxCapsule);
  }
  pump_tx();
}

void QueuePair::recover() {
  const auto now = Clock::now();
  if (now < next_try_) return;
  try {
    recovery_.reconnect(*this);
    return;
  } catch (const Error& e) {
    fd_.reset();
    error_ = e;
  }
  if (Clock::now() >= loss_deadline_) return give_up();
  delay_ = std::min(delay_ * 2, recovery_.max_delay);
  next_try_ = Clock::now() + delay_;
}

void QueuePair::give_up() {
  recovering_ = false;
  dead_ = true;
  fd_.reset();
  drop_tx();
  error_ = Error(error_ ? error_->code() : Errc::io,
                 fmt::format("NVMe/TCP queue {}: no connection within the controller-loss timeout ({} ms); last "
                             "error: {}", qid_, recovery_.loss_timeout.count(), error_ ? error_->what() : "none"));
  for (uint32_t cid = 0; cid + 1 < depth_; ++cid)
    if (slots_[cid].state == kBusy) complete(uint16_t(cid), nvme::Completion{{}, 0, nvme::HostStatus::transport});
}

void QueuePair::prepare(uint16_t cid, const nvme::Sqe& sqe, uint8_t* data, uint32_t len, nvme::IoCallback cb, void* arg) {
  if (len > max_transfer_) [[unlikely]] {
    free_[nfree_++] = cid;
    throw Error(Errc::invalid_argument, fmt::format("NVMe/TCP: {} bytes in one command (at most {})", len, max_transfer_));
  }
  Slot& s = slots_[cid];
  s.cb = cb, s.arg = arg, s.data = data, s.len = len;
  s.received = 0, s.r2t_left = 0, s.h2c_len = 0;
  s.epoch = scan_epoch_;
  s.state = kBusy;
  s.write = len && host_to_controller(sqe);
  s.inline_len = s.write && len <= in_capsule_max_ ? len : 0;
  nvme::Sqe cmd = sqe;
  cmd.cid = cid;
  // SGL1 (NVMe/TCP 1.0 section 3.4): in-capsule data is a Data Block at offset 0 of the
  // capsule; everything else (and no data at all) a Transport Data Block the transport
  // moves with R2T/H2CData or C2HData.
  cmd.flags = uint8_t((cmd.flags & ~0xC0u) | nvme::PSDT_SGL_MPTR_CONTIG);
  auto* sgl = reinterpret_cast<nvme::SglDescriptor*>(&cmd.prp1);
  sgl->addr = 0;
  sgl->length = len;
  sgl->rsvd[0] = sgl->rsvd[1] = sgl->rsvd[2] = 0;
  sgl->id = s.inline_len ? nvme::sgl::id(nvme::sgl::DATA_BLOCK, 0x1) : nvme::sgl::id(0x5, 0xA);
  s.hdr_len = encode_capsule_cmd(s.hdr, cmd, s.inline_len, dg_, cpda_);
  if (s.inline_len && dg_.data) s.ddgst = crc32c(data, s.inline_len);
}

void QueuePair::queue_h2c(uint16_t cid) {
  Slot& s = slots_[cid];
  const uint32_t n = std::min(s.r2t_left, maxh2cdata_);
  s.h2c_off = s.r2t_off, s.h2c_len = n;
  s.r2t_off += n, s.r2t_left -= n;
  const uint8_t flags = s.r2t_left == 0 ? pdu::LAST_PDU : 0;
  s.h2c_hdr_len = encode_data(s.h2c_hdr, pdu::H2C_DATA, flags, cid, s.ttag, s.h2c_off, n, dg_, cpda_);
  if (dg_.data) s.h2c_ddgst = crc32c(s.data + s.h2c_off, n);
  tx_push(cid, kTxH2C);
}

uint32_t QueuePair::tx_parts(TxItem it, iovec (&parts)[3]) {
  Slot& s = slots_[it.cid];
  const bool cap = it.kind == kTxCapsule;
  uint32_t np = 0;
  parts[np++] = {cap ? s.hdr : s.h2c_hdr, cap ? s.hdr_len : s.h2c_hdr_len};
  const uint32_t dlen = cap ? s.inline_len : s.h2c_len;
  if (dlen) {
    parts[np++] = {s.data + (cap ? 0 : s.h2c_off), dlen};
    if (dg_.data) parts[np++] = {cap ? &s.ddgst : &s.h2c_ddgst, pdu::DIGEST_LEN};
  }
  return np;
}

void QueuePair::pump_tx() {
  while (tx_head_ != tx_tail_ && !dead_) {
    // Gather the queued PDUs, skipping what a partial send already took.
    uint32_t niov = 0;
    size_t skip = tx_sent_;
    for (uint64_t i = tx_head_; i != tx_tail_ && niov + 3 <= kIovMax; ++i) {
      iovec parts[3];
      const uint32_t np = tx_parts(tx_[i & tx_mask_], parts);
      for (uint32_t p = 0; p < np; ++p) {
        if (skip >= parts[p].iov_len) {
          skip -= parts[p].iov_len;
          continue;
        }
        iov_[niov++] = {static_cast<uint8_t*>(parts[p].iov_base) + skip, parts[p].iov_len - skip};
        skip = 0;
      }
    }
    msghdr m{};
    m.msg_iov = iov_.data();
    m.msg_iovlen = niov;
    ssize_t k = ::sendmsg(fd_.get(), &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (k < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      fail(Error(Errc::io, fmt::format("NVMe/TCP: send on queue {}: {}", qid_, std::strerror(errno))));
      return;
    }
    ++stats_.sends;
    // Retire the items the send covered whole.
    size_t left = tx_sent_ + size_t(k);
    while (tx_head_ != tx_tail_) {
      const TxItem it = tx_[tx_head_ & tx_mask_];
      iovec parts[3];
      size_t total = 0;
      for (uint32_t p = 0, np = tx_parts(it, parts); p < np; ++p) total += parts[p].iov_len;
      if (left < total) break;
      left -= total;
      ++tx_head_;
      if (it.kind == kTxH2C) {
        slots_[it.cid].h2c_len = 0;
        if (slots_[it.cid].r2t_left) queue_h2c(it.cid);  // the next piece of this R2T
      }
    }
    tx_sent_ = left;
    if (size_t(k) < [&] {
          size_t n = 0;
          for (uint32_t i = 0; i < niov; ++i) n += iov_[i].iov_len;
          return n;
        }())
      return;  // the socket is full: poll() continues
  }
}

uint32_t QueuePair::pump_rx() {
  ssize_t k = ::recv(fd_.get(), rx_buf_.data(), rx_buf_.size(), MSG_DONTWAIT);
  if (k > 0) {
    ++stats_.recvs;
    Rx rx{*this};
    rx_.feed(rx_buf_.data(), size_t(k), rx);
    return uint32_t(k);
  }
  if (k == 0) throw Error(Errc::io, fmt::format("NVMe/TCP: the controller closed queue {}'s connection", qid_));
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
  throw Error(Errc::io, fmt::format("NVMe/TCP: recv on queue {}: {}", qid_, std::strerror(errno)));
}

uint32_t QueuePair::poll() {
  if (dead_) [[unlikely]] return 0;
  if (recovering_) [[unlikely]] {
    completed_now_ = 0;
    recover();
    return completed_now_;
  }
  return poll_io();
}

uint32_t QueuePair::poll_io() {
  completed_now_ = 0;
  if (tx_head_ != tx_tail_) pump_tx();
  try {
    // Drain what is there: a full staging buffer means more may be waiting.
    while (pump_rx() == rx_buf_.size()) {
    }
  } catch (const Error& e) {
    fail(e);
  }
  if (tx_head_ != tx_tail_ && !dead_) pump_tx();  // R2T answers queued by what arrived
  if (completed_now_ == 0 && nfree_ != depth_ - 1 && ++polls_since_tick_ >= 64) [[unlikely]] {
    polls_since_tick_ = 0;
    tick();
  }
  return completed_now_;
}

void QueuePair::complete(uint16_t cid, nvme::Completion c) {
  Slot& s = slots_[cid];
  s.state = kFree;
  if (cid != spare_cid()) [[likely]] free_[nfree_++] = cid;
  ++stats_.completed;
  ++completed_now_;
  s.cb(s.arg, c);
}

void QueuePair::tick() {
  // A scan every quarter of the timeout: a command seen busy by 4 scans has timed out.
  const auto now = Clock::now();
  if (timeout_.count() == 0 || now - last_scan_ < timeout_ / 4) return;
  last_scan_ = now;
  ++scan_epoch_;
  for (uint32_t cid = 0; cid < depth_; ++cid) {
    Slot& s = slots_[cid];
    if (s.state == kBusy && scan_epoch_ - s.epoch > 4) {
      // The transport cannot take one command back: the connection ends, as the kernel's
      // initiator does in error recovery; this command reports the timeout.
      const auto cb = s.cb;
      void* arg = s.arg;
      s.state = kFree;
      free_[nfree_++] = uint16_t(cid);
      ++completed_now_;
      fail(Error(Errc::timeout, fmt::format("NVMe/TCP: command {} on queue {} got no answer within {} ms", cid, qid_,
                                            timeout_.count())));
      cb(arg, nvme::Completion{{}, 0, nvme::HostStatus::timeout});
      return;
    }
  }
}

void QueuePair::fail(const Error& why) {
  if (dead_) return;
  error_ = why;
  fd_.reset();
  drop_tx();
  if (recovery_.reconnect) {
    // Keep the commands; poll() reconnects. A failure while reconnecting keeps the
    // first break's deadline.
    if (!recovering_) {
      recovering_ = true;
      loss_deadline_ = Clock::now() + recovery_.loss_timeout;
      delay_ = recovery_.first_delay;
      next_try_ = Clock::now() + delay_;
    }
    return;
  }
  dead_ = true;
  for (uint32_t cid = 0; cid < depth_; ++cid)
    if (slots_[cid].state == kBusy) complete(uint16_t(cid), nvme::Completion{{}, 0, nvme::HostStatus::transport});
}

void QueuePair::throw_dead() const {
  throw Error(error_ ? error_->code() : Errc::io,
              fmt::format("NVMe/TCP queue {} has no connection: {}", qid_, error_ ? error_->what() : "closed"));
}

nvme::Completion QueuePair::execute(const nvme::Sqe& sqe, void* data, uint32_t len, uint32_t* dw1) {
  Wait w;
  if (dead_) throw_dead();
  while (!submit(sqe, data, len, Wait::callback, &w)) poll();
  // While recovering, the reconnect sends the command (or the controller-loss timeout ends it).
  if (!recovering_) ring();
  const auto timeout = timeout_.count() ? timeout_ : milliseconds(3600000);
  auto deadline = Clock::now() + timeout;
  while (!w.done) {
    const bool was_recovering = recovering_;
    const bool progress = poll();
    // A reconnect (inside poll) resends the command with its timeout clock reset: the
    // deadline counts from there, not from the submission or the first send.
    if (was_recovering) deadline = Clock::now() + timeout;
    if (progress) continue;
    if (w.done) break;
    if (recovering_) {
      std::this_thread::sleep_for(milliseconds(1));
      continue;
    }
    // Sleep in poll(2) rather than spin: the synchronous path is the control path.
    if (!dead_ && !wait_readable(fd_.get(), std::min(deadline, Clock::now() + milliseconds(50)))) {
      if (Clock::now() >= deadline) {
        polls_since_tick_ = 64;
        last_scan_ = Clock::time_point{};
        scan_epoch_ += 4;  // every scan after this one sees the command as overdue
        tick();
      }
    }
  }
  if (w.c.host == nvme::HostStatus::transport || w.c.host == nvme::HostStatus::timeout) throw_dead();
  if (dw1) *dw1 = last_cqe_.dw1;
  return w.c;
}

}  // namespace aisio::tcp
