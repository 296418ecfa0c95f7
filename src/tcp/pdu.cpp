#include "tcp/pdu.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>

#include "tcp/decoder.hpp"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "NVMe/TCP headers are encoded as little-endian structs");

namespace aisio::tcp {

namespace pdu {
const char* type_name(uint8_t type) {
  // Indexed by PDU type; 0x08 is not defined.
  static constexpr const char* names[] = {"ICReq",       "ICResp",  "H2CTermReq", "C2HTermReq", "CapsuleCmd",
                                          "CapsuleResp", "H2CData", "C2HData",    nullptr,      "R2T"};
  return type < std::size(names) && names[type] ? names[type] : "unknown";
}
const char* fes_name(uint16_t fes) {
  // Indexed by FES, from FES_INVALID_HEADER_FIELD (1) up.
  static constexpr const char* names[] = {"invalid PDU header field",   "PDU sequence error",
                                          "header digest error",        "data transfer out of range",
                                          "data transfer limit exceeded", "unsupported parameter"};
  return fes >= 1 && fes <= std::size(names) ? names[fes - 1] : "unknown fatal error";
}
}  // namespace pdu

namespace {

CommonHeader* common(uint8_t* out, uint8_t type, uint8_t flags, uint8_t hlen) {
  auto* c = reinterpret_cast<CommonHeader*>(out);
  c->type = type, c->flags = flags, c->hlen = hlen, c->pdo = 0, c->plen = hlen;
  return c;
}

// Header digest, then padding so that data starts at a multiple of (pda + 1) dwords;
// fills in PDO, PLEN and the digest flags. Returns the bytes before the data.
uint32_t seal(uint8_t* out, uint32_t data_len, Digests d, uint8_t pda) {
  auto* c = reinterpret_cast<CommonHeader*>(out);
  uint32_t n = c->hlen;
  if (d.header) c->flags |= pdu::HDGSTF, n += pdu::DIGEST_LEN;
  c->plen = n;
  if (data_len) {
    const uint32_t align = (uint32_t(pda) + 1) * 4;
    const uint32_t pdo = pda ? (n + align - 1) / align * align : n;
    std::memset(out + n, 0, pdo - n);
    c->pdo = uint8_t(pdo);
    if (d.data) c->flags |= pdu::DDGSTF;
    c->plen = pdo + data_len + (d.data ? pdu::DIGEST_LEN : 0);
    n = pdo;
  }
  // The digest covers the finished header: PDO, PLEN and the flags are in place.
  if (d.header) {
    const uint32_t hd = crc32c(out, c->hlen);
    std::memcpy(out + c->hlen, &hd, 4);
  }
  return n;
}

uint32_t encode_ic(uint8_t* out, uint8_t type, uint8_t pda, Digests d, uint32_t word) {
  auto* p = reinterpret_cast<IcReq*>(out);
  std::memset(p, 0, sizeof *p);
  common(out, type, 0, pdu::IC_HLEN);
  p->pfv = 0;
  p->pda = pda;
  p->dgst = uint8_t((d.header ? pdu::DGST_HDGST : 0) | (d.data ? pdu::DGST_DDGST : 0));
  p->maxr2t = word;
  return pdu::IC_HLEN;
}

}  // namespace

uint32_t encode_ic_req(uint8_t* out, uint8_t hpda, Digests want, uint32_t maxr2t) {
  return encode_ic(out, pdu::IC_REQ, hpda, want, maxr2t);
}
uint32_t encode_ic_resp(uint8_t* out, uint8_t cpda, Digests granted, uint32_t maxh2cdata) {
  return encode_ic(out, pdu::IC_RESP, cpda, granted, maxh2cdata);
}

uint32_t encode_capsule_cmd(uint8_t* out, const nvme::Sqe& sqe, uint32_t data_len, Digests d, uint8_t cpda) {
  common(out, pdu::CAPSULE_CMD, 0, pdu::CMD_HLEN);
  std::memcpy(out + sizeof(CommonHeader), &sqe, sizeof sqe);
  return seal(out, data_len, d, cpda);
}

uint32_t encode_capsule_resp(uint8_t* out, const nvme::Cqe& cqe, Digests d) {
  common(out, pdu::CAPSULE_RESP, 0, pdu::RESP_HLEN);
  std::memcpy(out + sizeof(CommonHeader), &cqe, sizeof cqe);
  return seal(out, 0, d, 0);
}

uint32_t encode_data(uint8_t* out, uint8_t type, uint8_t flags, uint16_t cccid, uint16_t ttag, uint32_t offset,
                     uint32_t data_len, Digests d, uint8_t pda) {
  auto* h = reinterpret_cast<DataHeader*>(out);
  common(out, type, flags, pdu::DATA_HLEN);
  h->cccid = cccid, h->ttag = ttag, h->offset = offset, h->length = data_len, h->rsvd = 0;
  return seal(out, data_len, d, pda);
}

uint32_t encode_r2t(uint8_t* out, uint16_t cccid, uint16_t ttag, uint32_t offset, uint32_t length, Digests d) {
  auto* h = reinterpret_cast<DataHeader*>(out);
  common(out, pdu::R2T, 0, pdu::DATA_HLEN);
  h->cccid = cccid, h->ttag = ttag, h->offset = offset, h->length = length, h->rsvd = 0;
  return seal(out, 0, d, 0);
}

uint32_t encode_term_req(uint8_t* out, uint8_t type, uint16_t fes, uint32_t fei, const uint8_t* bad, uint32_t bad_len) {
  auto* t = reinterpret_cast<TermReq*>(out);
  std::memset(t, 0, sizeof *t);
  common(out, type, 0, pdu::TERM_HLEN);
  t->fes = fes;
  t->fei_lo = uint16_t(fei), t->fei_hi = uint16_t(fei >> 16);
  bad_len = std::min(bad_len, pdu::TERM_MAX_DATA);
  if (bad_len) std::memcpy(out + pdu::TERM_HLEN, bad, bad_len);
  t->ch.plen = pdu::TERM_HLEN + bad_len;
  return t->ch.plen;
}

}  // namespace aisio::tcp
