// A tiny NVMe/TCP controller for the tests: one connection (one end of a socketpair),
// served by a thread with blocking I/O. It answers ICReq, Fabrics Connect, Property
// Get/Set, Identify, Keep Alive, Read and Write over a RAM namespace, moving write data
// in-capsule or through R2T + H2CData and read data as C2HData. Faults can be asked for.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "spec/registers.hpp"
#include "tcp/decoder.hpp"
#include "tcp/fabrics.hpp"
#include "tcp/pdu.hpp"

namespace aisio::tcp::test {

struct PeerOptions {
  Digests grant;                // digests the peer agrees to (if asked)
  uint32_t maxh2cdata = 8192;
  uint32_t c2h_chunk = 4096;    // bytes per C2HData PDU
  bool success_flag = false;    // end reads with C2HData SUCCESS instead of a CapsuleResp
  uint8_t cpda = 0;
  // Faults, after `fault_after` commands (Connect included) have been answered:
  enum class Fault { none, silent, bad_hlen, bad_hdgst, unknown_type, bad_ddgst, term_req, close };
  Fault fault = Fault::none;
  uint32_t fault_after = 0;
  bool io_only = false;         // faults on I/O queues only (the admin queue answers)
};

class Peer {
 public:
  static constexpr uint32_t kLba = 512;
  static constexpr uint64_t kBlocks = 2048;

  // `shared`: the namespace of several connections (admin and I/O queues of one
  // controller); null: a namespace of its own.
  Peer(int fd, PeerOptions o, std::shared_ptr<std::vector<uint8_t>> shared = nullptr)
      : fd_(fd), o_(o), dec_(Role::controller), ns_store_(shared ? shared : make_ns()), ns_(*ns_store_) {
    th_ = std::thread([this] { serve(); });
  }
  ~Peer() {
    ::shutdown(fd_, SHUT_RDWR);
    th_.join();
    ::close(fd_);
  }
  std::vector<uint8_t>& ns() { return ns_; }
  // Breaks the connection from the controller's side (a target restart).
  void drop() { ::shutdown(fd_, SHUT_RDWR); }
  static std::shared_ptr<std::vector<uint8_t>> make_ns() {
    auto v = std::make_shared<std::vector<uint8_t>>(kBlocks * kLba);
    for (size_t i = 0; i < v->size(); ++i) (*v)[i] = uint8_t(i * 7 + 3);
    return v;
  }
  std::atomic<uint32_t> commands{0};
  std::atomic<uint32_t> r2ts{0};
  std::atomic<uint32_t> keep_alives{0};
  uint64_t cc = 0;

  // Decoder handler.
  uint8_t* data_target(const uint8_t* h, uint32_t len) {
    auto type = h[0];
    if (type == pdu::CAPSULE_CMD) {
      inbuf_.assign(len, 0);
      return inbuf_.data();
    }
    if (type == pdu::H2C_DATA) {
      auto& d = *reinterpret_cast<const DataHeader*>(h);
      auto it = writes_.find(d.cccid);
      if (it == writes_.end() || d.ttag != 7 || d.offset + len > it->second.buf.size())
        throw Error(Errc::protocol, "peer: H2CData out of range");
      return it->second.buf.data() + d.offset;
    }
    return nullptr;
  }
  void on_pdu(const uint8_t* h) {
    switch (h[0]) {
      case pdu::IC_REQ: {
        auto& r = *reinterpret_cast<const IcReq*>(h);
        dg_ = {bool(r.dgst & pdu::DGST_HDGST) && o_.grant.header, bool(r.dgst & pdu::DGST_DDGST) && o_.grant.data};
        uint8_t out[pdu::IC_HLEN];
        encode_ic_resp(out, o_.cpda, dg_, o_.maxh2cdata);
        put(out, sizeof out);
        dec_.set_digests(dg_);
        return;
      }
      case pdu::CAPSULE_CMD: {
        sqe_ = reinterpret_cast<const CapsuleCmd*>(h)->sqe;
        have_inline_ = reinterpret_cast<const CommonHeader*>(h)->plen > pdu::CMD_HLEN + (dg_.header ? 4 : 0);
        if (!have_inline_) inbuf_.clear();
        command();
        return;
      }
      case pdu::H2C_DATA: {
        auto& d = *reinterpret_cast<const DataHeader*>(h);
        Write& w = writes_[d.cccid];
        w.got += d.length;
        if ((d.ch.flags & pdu::LAST_PDU) && w.got == w.buf.size()) {
          std::memcpy(ns_.data() + w.off, w.buf.data(), w.buf.size());
          writes_.erase(d.cccid);
          respond(d.cccid, 0, 0, 0);
        }
        return;
      }
    }
  }

 private:
  void serve() {
    uint8_t buf[65536];
    try {
      for (;;) {
        ssize_t k = ::recv(fd_, buf, sizeof buf, 0);
        if (k <= 0) return;
        dec_.feed(buf, size_t(k), *this);
        if (dead_) return;
      }
    } catch (const Error&) {
      decode_failed = true;
    }
  }
  void put(const void* p, size_t n) {
    auto* b = static_cast<const uint8_t*>(p);
    while (n) {
      ssize_t k = ::send(fd_, b, n, MSG_NOSIGNAL);
      if (k <= 0) return;
      b += k, n -= size_t(k);
    }
  }
  void respond(uint16_t cid, uint16_t status, uint32_t dw0, uint32_t dw1) {
    ++commands;
    nvme::Cqe cqe{};
    cqe.dw0 = dw0, cqe.dw1 = dw1, cqe.cid = cid, cqe.status = uint16_t(status << 1);
    alignas(8) uint8_t out[64];
    uint32_t n = encode_capsule_resp(out, cqe, dg_);
    if (fault_now()) {
      switch (o_.fault) {
        case PeerOptions::Fault::silent: return;
        case PeerOptions::Fault::bad_hlen: out[2] = 20; break;
        case PeerOptions::Fault::bad_hdgst:
          if (dg_.header) out[pdu::RESP_HLEN] ^= 1;
          break;
        case PeerOptions::Fault::unknown_type: out[0] = 0x0F; break;
        case PeerOptions::Fault::term_req: {
          n = encode_term_req(out, pdu::C2H_TERM_REQ, pdu::FES_INVALID_HEADER_FIELD, 2, out, 24);
          break;
        }
        case PeerOptions::Fault::close: dead_ = true; ::shutdown(fd_, SHUT_RDWR); return;
        default: break;
      }
    }
    put(out, n);
  }
  bool fault_now() const {
    return o_.fault != PeerOptions::Fault::none && commands > o_.fault_after && !(o_.io_only && connected_qid == 0);
  }
  void command() {
    const nvme::Sqe& s = sqe_;
    if (s.opc == fabrics::OPC) {
      const uint8_t fctype = uint8_t(s.nsid);
      if (fctype == fabrics::CONNECT) {
        auto* d = reinterpret_cast<const fabrics::ConnectData*>(inbuf_.data());
        if (inbuf_.size() != fabrics::CONNECT_DATA_LEN || std::string(d->subnqn) != "nqn.test:peer")
          return respond(s.cid, 0x182, 0, 0);  // Connect Invalid Parameters (SCT 1, SC 0x82)
        connected_qid = uint16_t(s.cdw10 >> 16);
        sqsize = uint16_t(s.cdw11);
        return respond(s.cid, 0, 0x21, 0);  // CNTLID 0x21
      }
      if (fctype == fabrics::PROPERTY_GET) {
        uint64_t v = 0;
        if (s.cdw11 == 0) v = nvme::Cap::make(127, true, 2, 0, nvme::CAP_CSS_NVM, 0, 0);
        if (s.cdw11 == 0x08) v = 0x10400;
        if (s.cdw11 == 0x14) v = cc;
        if (s.cdw11 == 0x1C) v = (cc & 1) ? 1 : 0;
        return respond(s.cid, 0, uint32_t(v), uint32_t(v >> 32));
      }
      if (fctype == fabrics::PROPERTY_SET) {
        if (s.cdw11 == 0x14) cc = s.cdw12;
        return respond(s.cid, 0, 0, 0);
      }
      return respond(s.cid, 0x2, 0, 0);
    }
    const auto* sgl = reinterpret_cast<const nvme::SglDescriptor*>(&s.prp1);
    if (connected_qid == 0) {
      if (s.opc == nvme::admin::KEEP_ALIVE) {
        ++keep_alives;
        return respond(s.cid, 0, 0, 0);
      }
      if (s.opc == nvme::admin::SET_FEATURES) return respond(s.cid, 0, 0x00030003, 0);
      if (s.opc == nvme::admin::IDENTIFY) {
        std::vector<uint8_t> id(4096, 0);
        const uint8_t cns = uint8_t(s.cdw10);
        if (cns == nvme::cns::CONTROLLER) {
          std::memcpy(id.data() + 24, "aisio test peer", 15);
          uint32_t ioccsz = (64 + 4096) / 16;
          std::memcpy(id.data() + 1792, &ioccsz, 4);
          id[77] = 5;  // MDTS: 128 KiB
        } else if (cns == nvme::cns::ACTIVE_NSID_LIST) {
          id[0] = 1;
        } else if (cns == nvme::cns::NAMESPACE) {
          uint64_t n = kBlocks;
          std::memcpy(id.data(), &n, 8);
          std::memcpy(id.data() + 8, &n, 8);
          id[128 + 2] = 9;  // LBAF0: 512-byte blocks
        }
        return send_read(s.cid, id.data(), uint32_t(std::min<uint64_t>(sgl->length, id.size())));
      }
      return respond(s.cid, 0x1, 0, 0);
    }
    const uint64_t slba = uint64_t(s.cdw10) | uint64_t(s.cdw11) << 32;
    const uint64_t off = slba * kLba, len = uint64_t((s.cdw12 & 0xFFFF) + 1) * kLba;
    if (off + len > ns_.size()) return respond(s.cid, 0x80, 0, 0);  // LBA out of range
    if (sgl->length != len) return respond(s.cid, 0x0F, 0, 0);     // data SGL length invalid
    if (s.opc == nvme::nvm::READ) return send_read(s.cid, ns_.data() + off, uint32_t(len));
    if (s.opc == nvme::nvm::WRITE) {
      if (have_inline_) {
        if (sgl->id != nvme::sgl::id(0, 1) || inbuf_.size() != len) return respond(s.cid, 0x0F, 0, 0);
        std::memcpy(ns_.data() + off, inbuf_.data(), len);
        return respond(s.cid, 0, 0, 0);
      }
      if (sgl->id != nvme::sgl::id(5, 0xA)) return respond(s.cid, 0x11, 0, 0);
      writes_[s.cid] = Write{std::vector<uint8_t>(len), off, 0};
      ++r2ts;
      alignas(8) uint8_t out[64];
      put(out, encode_r2t(out, s.cid, 7, 0, uint32_t(len), dg_));
      return;
    }
    respond(s.cid, 0x1, 0, 0);
  }
  void send_read(uint16_t cid, const uint8_t* data, uint32_t len) {
    for (uint32_t off = 0; off < len; off += o_.c2h_chunk) {
      const uint32_t n = std::min(o_.c2h_chunk, len - off);
      const bool last = off + n == len;
      uint8_t flags = last ? pdu::LAST_PDU : 0;
      if (last && o_.success_flag) flags |= pdu::SUCCESS;
      alignas(8) uint8_t out[300];
      uint32_t h = encode_data(out, pdu::C2H_DATA, flags, cid, 0, off, n, dg_, 0);
      put(out, h);
      put(data + off, n);
      if (dg_.data) {
        uint32_t d = crc32c(data + off, n);
        if (o_.fault == PeerOptions::Fault::bad_ddgst && commands >= o_.fault_after) d ^= 1;  // counts this one
        put(&d, 4);
      }
    }
    if (!o_.success_flag) respond(cid, 0, 0, 0);
    else ++commands;
  }

 public:
  std::atomic<bool> decode_failed{false};
  uint16_t connected_qid = 0xFFFF;
  uint16_t sqsize = 0;

 private:
  int fd_;
  PeerOptions o_;
  Decoder dec_;
  Digests dg_;
  std::shared_ptr<std::vector<uint8_t>> ns_store_;
  std::vector<uint8_t>& ns_;
  std::vector<uint8_t> inbuf_;
  struct Write {  // a write waiting for its H2CData, by CID
    std::vector<uint8_t> buf;
    uint64_t off = 0;
    uint32_t got = 0;
  };
  std::map<uint16_t, Write> writes_;
  nvme::Sqe sqe_{};
  bool have_inline_ = false;
  bool dead_ = false;
  std::thread th_;
};

// Listens on 127.0.0.1 (a free port) and serves each connection with a Peer over one
// shared namespace: a whole controller, admin and I/O queues.
class Listener {
 public:
  explicit Listener(PeerOptions o = {}) : o_(o), ns_(Peer::make_ns()) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 16);
    th_ = std::thread([this] {
      for (;;) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::lock_guard g(mu_);
        peers_.push_back(std::make_unique<Peer>(c, o_, ns_));  // (o_ under mu_)
      }
    });
  }
  ~Listener() {
    ::shutdown(fd_, SHUT_RDWR);
    th_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  std::vector<uint8_t>& ns() { return *ns_; }
  // Options for connections accepted from now on.
  void set_options(PeerOptions o) {
    std::lock_guard g(mu_);
    o_ = o;
  }
  // Breaks every connection so far, as a target restart does; new ones are accepted.
  void drop_all() {
    std::lock_guard g(mu_);
    for (auto& p : peers_) p->drop();
  }
  uint32_t keep_alives() {
    std::lock_guard g(mu_);
    uint32_t n = 0;
    for (auto& p : peers_) n += p->keep_alives;
    return n;
  }
  size_t connections() {
    std::lock_guard g(mu_);
    return peers_.size();
  }

 private:
  PeerOptions o_;
  std::shared_ptr<std::vector<uint8_t>> ns_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::mutex mu_;
  std::vector<std::unique_ptr<Peer>> peers_;
  std::thread th_;
};

}  // namespace aisio::tcp::test
