// Incremental NVMe/TCP PDU decoder: bytes in, whole PDUs out, whatever way the stream
// was cut. One per connection and direction; no allocation (the header is staged in a
// fixed buffer, data goes straight to where the handler says).
//
// A Handler (static dispatch, a template parameter of feed) has:
//   uint8_t* data_target(const uint8_t* header, uint32_t data_len)
//       called once the header (and its digest) is complete and checked, for a PDU that
//       carries data; returns where data_len bytes go, or nullptr to drop them (a
//       termination request's copy of the offending header). May throw aisio::Error to
//       refuse the PDU (a C2HData outside its command's buffer).
//   void on_pdu(const uint8_t* header)
//       called when the PDU is complete: data in place and its digest checked.
// `header` points at the common header followed by the type's fixed header.
//
// Anything malformed (an unknown or unexpected type, a wrong HLEN, PDO or PLEN, a flag
// that disagrees with the negotiated digests, a digest mismatch) throws
// Error(Errc::protocol) naming the PDU and field; the connection is then over: the
// decoder stays failed and the caller closes the socket.
#pragma once
#include <algorithm>
#include <cstring>
#include <iterator>
#include <string>

#include "common/error.hpp"
#include "extents/crc32c.hpp"
#include "tcp/pdu.hpp"

namespace aisio::tcp {

// Which side reads this stream: the host reads controller-to-host PDUs, a target
// (the test peer) reads host-to-controller PDUs.
enum class Role : uint8_t { host, controller };

// The wire CRC32C (digest) of a buffer; crc32c_update continues one over several pieces.
inline uint32_t crc32c_update(uint32_t crc, const void* p, size_t n) { return extents::crc32c_update(crc, p, n); }
inline uint32_t crc32c(const void* p, size_t n) { return ~crc32c_update(~0u, p, n); }

class Decoder {
 public:
  explicit Decoder(Role role, uint32_t max_data = 16u << 20) : role_(role), max_data_(max_data) {}

  // After the ICReq/ICResp exchange: digests on every later PDU that can carry them.
  void set_digests(Digests d) { dg_ = d; }
  Digests digests() const { return dg_; }
  // True between PDUs (nothing of a PDU is buffered).
  bool idle() const { return stage_ == Stage::header && got_ == 0; }
  bool failed() const { return failed_; }

  // Consumes all n bytes (or throws). Callbacks run in stream order.
  template <class H>
  void feed(const uint8_t* p, size_t n, H& h) {
    if (failed_) throw Error(Errc::protocol, "NVMe/TCP: connection already failed");
    try {
      while (n) {
        size_t used = step(p, n, h);
        p += used;
        n -= used;
      }
    } catch (...) {
      failed_ = true;
      throw;
    }
  }

 private:
  enum class Stage : uint8_t { header, pad, data, ddgst };

  [[noreturn]] void bad(const std::string& what) const {
    throw Error(Errc::protocol, "NVMe/TCP: malformed " + std::string(pdu::type_name(ch().type)) + " PDU: " + what);
  }
  const CommonHeader& ch() const { return *reinterpret_cast<const CommonHeader*>(hdr_); }

  template <class H>
  size_t step(const uint8_t* p, size_t n, H& h) {
    switch (stage_) {
      case Stage::header: {
        const uint32_t want = got_ < sizeof(CommonHeader) ? uint32_t(sizeof(CommonHeader)) : need_;
        const size_t take = std::min<size_t>(n, want - got_);
        std::memcpy(hdr_ + got_, p, take);
        got_ += uint32_t(take);
        if (got_ == sizeof(CommonHeader) && want == sizeof(CommonHeader)) {
          need_ = check_common();
          if (need_ > got_) return take;
        }
        if (got_ == need_) header_done(h);
        return take;
      }
      case Stage::pad: {
        const size_t take = std::min<size_t>(n, left_);
        left_ -= uint32_t(take);
        if (left_ == 0) begin_data(h);
        return take;
      }
      case Stage::data: {
        const size_t take = std::min<size_t>(n, left_);
        if (dst_) std::memcpy(dst_, p, take), dst_ += take;
        if (has_ddgst_) crc_ = crc32c_update(crc_, p, take);
        left_ -= uint32_t(take);
        if (left_ == 0) end_data(h);
        return take;
      }
      case Stage::ddgst: {
        const size_t take = std::min<size_t>(n, pdu::DIGEST_LEN - got_);
        std::memcpy(dgst_ + got_, p, take);
        got_ += uint32_t(take);
        if (got_ == pdu::DIGEST_LEN) {
          uint32_t wire;
          std::memcpy(&wire, dgst_, 4);
          if (wire != ~crc_) bad("data digest mismatch");
          finish(h);
        }
        return take;
      }
    }
    return n;
  }

  // Per PDU type (indexed by CH.PDU-TYPE): its HLEN (0: no such type), the side that
  // reads it, and whether it takes the negotiated digests and may carry data.
  struct Rule {
    uint8_t hlen;
    Role reader;
    bool digests, data;
  };
  static constexpr Rule kRules[] = {
      {pdu::IC_HLEN, Role::controller, false, false},    // IC_REQ
      {pdu::IC_HLEN, Role::host, false, false},          // IC_RESP
      {pdu::TERM_HLEN, Role::controller, false, false},  // H2C_TERM_REQ
      {pdu::TERM_HLEN, Role::host, false, false},        // C2H_TERM_REQ
      {pdu::CMD_HLEN, Role::controller, true, true},     // CAPSULE_CMD
      {pdu::RESP_HLEN, Role::host, true, false},         // CAPSULE_RESP
      {pdu::DATA_HLEN, Role::controller, true, true},    // H2C_DATA
      {pdu::DATA_HLEN, Role::host, true, true},          // C2H_DATA
      {0, Role::host, false, false},                     // 0x08: not defined
      {pdu::DATA_HLEN, Role::host, true, false},         // R2T
  };
  static const Rule* rule(uint8_t type) {
    return type < std::size(kRules) && kRules[type].hlen ? &kRules[type] : nullptr;
  }

  // Checks the common header against the PDU type; returns the header bytes to stage
  // (HLEN plus the header digest).
  uint32_t check_common() {
    const CommonHeader& c = ch();
    const Rule* r = rule(c.type);
    if (!r) throw Error(Errc::protocol, "NVMe/TCP: unknown PDU type " + std::to_string(c.type));
    if (r->reader != role_) unexpected();
    const uint8_t want_hlen = r->hlen;
    const bool data_pdu = r->data, digests = r->digests;
    if (c.hlen != want_hlen)
      bad("HLEN " + std::to_string(c.hlen) + ", expected " + std::to_string(want_hlen));
    const bool hd = digests && dg_.header;
    if (digests && bool(c.flags & pdu::HDGSTF) != dg_.header)
      bad(dg_.header ? "HDGSTF clear but header digests were negotiated" : "HDGSTF set but header digests are off");
    const uint32_t hbytes = c.hlen + (hd ? pdu::DIGEST_LEN : 0);
    has_ddgst_ = false;
    data_len_ = 0;
    pad_ = 0;
    if (c.type == pdu::C2H_TERM_REQ || c.type == pdu::H2C_TERM_REQ) {
      if (c.plen < hbytes || c.plen - hbytes > pdu::TERM_MAX_DATA)
        bad("PLEN " + std::to_string(c.plen) + " out of range for a termination request");
      data_len_ = c.plen - hbytes;
      return hbytes;
    }
    if (!data_pdu) {
      if (c.plen != hbytes) bad("PLEN " + std::to_string(c.plen) + ", expected " + std::to_string(hbytes));
      if (c.pdo != 0) bad("PDO set on a PDU without data");
      if (c.flags & pdu::DDGSTF) bad("DDGSTF set on a PDU without data");
      return hbytes;
    }
    if (c.plen == hbytes) {  // a capsule without in-capsule data
      if (c.pdo != 0) bad("PDO " + std::to_string(c.pdo) + " without data");
      if (c.type != pdu::CAPSULE_CMD) bad("data PDU without data");
      return hbytes;
    }
    if (c.pdo < hbytes) bad("PDO " + std::to_string(c.pdo) + " inside the header");
    has_ddgst_ = dg_.data;
    if (bool(c.flags & pdu::DDGSTF) != dg_.data)
      bad(dg_.data ? "DDGSTF clear but data digests were negotiated" : "DDGSTF set but data digests are off");
    const uint32_t tail = has_ddgst_ ? pdu::DIGEST_LEN : 0;
    if (c.plen <= uint32_t(c.pdo) + tail) bad("PLEN " + std::to_string(c.plen) + " leaves no data after PDO");
    data_len_ = c.plen - c.pdo - tail;
    if (data_len_ > max_data_) bad("data length " + std::to_string(data_len_) + " over the limit");
    pad_ = c.pdo - hbytes;
    return hbytes;
  }
  [[noreturn]] void unexpected() const {
    throw Error(Errc::protocol, std::string("NVMe/TCP: unexpected ") + pdu::type_name(ch().type) + " PDU on the " +
                                    (role_ == Role::host ? "host" : "controller") + " side");
  }

  template <class H>
  void header_done(H& h) {
    const CommonHeader& c = ch();
    if (rule(c.type)->digests && dg_.header) {
      uint32_t wire;
      std::memcpy(&wire, hdr_ + c.hlen, 4);
      if (wire != crc32c(hdr_, c.hlen)) bad("header digest mismatch");
    }
    if (c.type == pdu::C2H_DATA || c.type == pdu::H2C_DATA) {
      const auto& d = *reinterpret_cast<const DataHeader*>(hdr_);
      if (d.length != data_len_)
        bad("DATAL " + std::to_string(d.length) + " but the PDU carries " + std::to_string(data_len_) + " bytes");
    }
    if (data_len_ == 0) return finish(h);
    if (pad_) {
      stage_ = Stage::pad, left_ = pad_;
      return;
    }
    begin_data(h);
  }
  template <class H>
  void begin_data(H& h) {
    dst_ = h.data_target(hdr_, data_len_);
    crc_ = ~0u;
    stage_ = Stage::data, left_ = data_len_;
  }
  template <class H>
  void end_data(H& h) {
    if (has_ddgst_) {
      stage_ = Stage::ddgst, got_ = 0;
      return;
    }
    finish(h);
  }
  template <class H>
  void finish(H& h) {
    stage_ = Stage::header, got_ = 0, need_ = 0;
    h.on_pdu(hdr_);
  }

  Role role_;
  uint32_t max_data_;
  Digests dg_;
  Stage stage_ = Stage::header;
  bool failed_ = false;
  bool has_ddgst_ = false;
  uint32_t got_ = 0, need_ = 0;
  uint32_t left_ = 0, pad_ = 0, data_len_ = 0;
  uint32_t crc_ = ~0u;
  uint8_t* dst_ = nullptr;
  alignas(8) uint8_t hdr_[pdu::MAX_HEADER];
  uint8_t dgst_[pdu::DIGEST_LEN];
};

}  // namespace aisio::tcp
