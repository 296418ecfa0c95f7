// NVMe/TCP PDUs (NVMe over TCP Transport Specification 1.0, section 3.6): the 8-byte
// common header every PDU starts with, the fixed PDU-specific headers, and encoders that
// write a complete header (common + specific + header digest + padding up to PDO) into a
// caller's buffer. All multi-byte fields are little-endian on the wire; x86 and aarch64
// are little-endian hosts, so the structs below are the wire layout (checked by
// static_assert; a big-endian build is refused in pdu.cpp).
#pragma once
#include <cstddef>
#include <cstdint>

#include "spec/commands.hpp"

namespace aisio::tcp {

namespace pdu {
// PDU types (CH.PDU-TYPE).
inline constexpr uint8_t IC_REQ = 0x00;
inline constexpr uint8_t IC_RESP = 0x01;
inline constexpr uint8_t H2C_TERM_REQ = 0x02;
inline constexpr uint8_t C2H_TERM_REQ = 0x03;
inline constexpr uint8_t CAPSULE_CMD = 0x04;
inline constexpr uint8_t CAPSULE_RESP = 0x05;
inline constexpr uint8_t H2C_DATA = 0x06;
inline constexpr uint8_t C2H_DATA = 0x07;
inline constexpr uint8_t R2T = 0x09;

// CH.FLAGS.
inline constexpr uint8_t HDGSTF = 0x01;    // a header digest follows the header
inline constexpr uint8_t DDGSTF = 0x02;    // a data digest follows the data
inline constexpr uint8_t LAST_PDU = 0x04;  // H2CData/C2HData: the last data PDU of the transfer
inline constexpr uint8_t SUCCESS = 0x08;   // C2HData: the command succeeded, no CapsuleResp follows

// Header lengths (CH.HLEN) by type.
inline constexpr uint8_t IC_HLEN = 128;
inline constexpr uint8_t TERM_HLEN = 24;
inline constexpr uint8_t CMD_HLEN = 8 + 64;   // common header + SQE
inline constexpr uint8_t RESP_HLEN = 8 + 16;  // common header + CQE
inline constexpr uint8_t DATA_HLEN = 24;      // H2CData, C2HData, R2T
inline constexpr uint32_t DIGEST_LEN = 4;
inline constexpr uint32_t MAX_HEADER = IC_HLEN + DIGEST_LEN;  // the largest header with its digest
// ICReq/ICResp DGST bits.
inline constexpr uint8_t DGST_HDGST = 0x01;
inline constexpr uint8_t DGST_DDGST = 0x02;
// Termination request fatal error status (FES).
inline constexpr uint16_t FES_INVALID_HEADER_FIELD = 0x01;
inline constexpr uint16_t FES_PDU_SEQUENCE_ERROR = 0x02;
inline constexpr uint16_t FES_HEADER_DIGEST_ERROR = 0x03;
inline constexpr uint16_t FES_DATA_OUT_OF_RANGE = 0x04;
inline constexpr uint16_t FES_DATA_LIMIT_EXCEEDED = 0x05;
inline constexpr uint16_t FES_UNSUPPORTED_PARAMETER = 0x06;
// The most a termination request carries after its header (the offending PDU header).
inline constexpr uint32_t TERM_MAX_DATA = 152;

const char* type_name(uint8_t type);
const char* fes_name(uint16_t fes);
}  // namespace pdu

struct CommonHeader {
  uint8_t type;
  uint8_t flags;
  uint8_t hlen;
  uint8_t pdo;    // PDU data offset: where data starts (0: no data)
  uint32_t plen;  // total PDU length, header, padding, data and digests included
};
static_assert(sizeof(CommonHeader) == 8);

struct IcReq {  // and ICResp: the same layout, MAXR2T/MAXH2CDATA in the same dword
  CommonHeader ch;
  uint16_t pfv;      // PDU format version: 0
  uint8_t pda;       // ICReq: HPDA, ICResp: CPDA (alignment of data, in dwords, 0-based)
  uint8_t dgst;      // DGST_HDGST | DGST_DDGST
  uint32_t maxr2t;   // ICReq: outstanding R2Ts per command, 0-based; ICResp: MAXH2CDATA bytes
  uint8_t rsvd[112];
};
static_assert(sizeof(IcReq) == pdu::IC_HLEN);

struct CapsuleCmd {
  CommonHeader ch;
  nvme::Sqe sqe;
};
static_assert(sizeof(CapsuleCmd) == pdu::CMD_HLEN);

struct CapsuleResp {
  CommonHeader ch;
  nvme::Cqe cqe;
};
static_assert(sizeof(CapsuleResp) == pdu::RESP_HLEN);

// H2CData, C2HData and R2T share one layout: CCCID, TTAG (reserved in C2HData), offset,
// length.
struct DataHeader {
  CommonHeader ch;
  uint16_t cccid;   // command capsule CID
  uint16_t ttag;    // transfer tag (R2T, H2CData)
  uint32_t offset;  // DATAO / R2TO: byte offset into the command's data
  uint32_t length;  // DATAL / R2TL
  uint32_t rsvd;
};
static_assert(sizeof(DataHeader) == pdu::DATA_HLEN);

struct TermReq {
  CommonHeader ch;
  uint16_t fes;     // fatal error status
  uint16_t fei_lo;  // fatal error information (the offending field's byte offset), split:
  uint16_t fei_hi;  //   the field sits at an odd 2-byte boundary in the header
  uint8_t rsvd[10];
};
static_assert(sizeof(TermReq) == pdu::TERM_HLEN);

// What one side of a connection has agreed to (the ICReq/ICResp exchange).
struct Digests {
  bool header = false;
  bool data = false;
};

// Encoders. Each writes a whole header, starting at out (at least pdu::MAX_HEADER + 128
// bytes of room), and returns the bytes written: header, header digest when enabled,
// and padding up to PDO for PDUs that carry data. `data_len` bytes of data (and a data
// digest when enabled) follow on the wire; the encoder accounts for them in PLEN.
// `cpda` / `hpda` is the receiver's data alignment, 0-based dwords (0: none).
uint32_t encode_ic_req(uint8_t* out, uint8_t hpda, Digests want, uint32_t maxr2t);
uint32_t encode_ic_resp(uint8_t* out, uint8_t cpda, Digests granted, uint32_t maxh2cdata);
uint32_t encode_capsule_cmd(uint8_t* out, const nvme::Sqe& sqe, uint32_t data_len, Digests d, uint8_t cpda);
uint32_t encode_capsule_resp(uint8_t* out, const nvme::Cqe& cqe, Digests d);
uint32_t encode_data(uint8_t* out, uint8_t type, uint8_t flags, uint16_t cccid, uint16_t ttag, uint32_t offset,
                     uint32_t data_len, Digests d, uint8_t pda);
uint32_t encode_r2t(uint8_t* out, uint16_t cccid, uint16_t ttag, uint32_t offset, uint32_t length, Digests d);
// A termination request carrying up to TERM_MAX_DATA bytes of the offending header,
// which the encoder copies in: returns the whole PDU's length.
uint32_t encode_term_req(uint8_t* out, uint8_t type, uint16_t fes, uint32_t fei, const uint8_t* bad, uint32_t bad_len);

}  // namespace aisio::tcp
