// NVMe controller registers (NVMe Base Specification 2.0, section 3.1.3).
// Offsets into BAR0 and field accessors for CAP, VS, CC, CSTS and AQA.
#pragma once
#include <cstdint>

namespace aisio::nvme {

namespace reg {
inline constexpr uint32_t CAP = 0x00;    // Controller Capabilities (64 bit)
inline constexpr uint32_t VS = 0x08;     // Version
inline constexpr uint32_t INTMS = 0x0C;  // Interrupt Mask Set
inline constexpr uint32_t INTMC = 0x10;  // Interrupt Mask Clear
inline constexpr uint32_t CC = 0x14;     // Controller Configuration
inline constexpr uint32_t CSTS = 0x1C;   // Controller Status
inline constexpr uint32_t NSSR = 0x20;   // NVM Subsystem Reset
inline constexpr uint32_t AQA = 0x24;    // Admin Queue Attributes
inline constexpr uint32_t ASQ = 0x28;    // Admin SQ Base Address (64 bit)
inline constexpr uint32_t ACQ = 0x30;    // Admin CQ Base Address (64 bit)
inline constexpr uint32_t DOORBELL_BASE = 0x1000;
}  // namespace reg

// Doorbell offsets: SQ y tail at 0x1000 + (2y) * (4 << DSTRD), CQ y head one stride later.
constexpr uint32_t sq_tail_doorbell(uint16_t qid, uint32_t dstrd) {
  return reg::DOORBELL_BASE + (2u * qid) * (4u << dstrd);
}
constexpr uint32_t cq_head_doorbell(uint16_t qid, uint32_t dstrd) {
  return reg::DOORBELL_BASE + (2u * qid + 1u) * (4u << dstrd);
}

constexpr uint64_t bits(uint64_t v, unsigned hi, unsigned lo) {
  return (v >> lo) & ((hi - lo == 63) ? ~0ull : ((1ull << (hi - lo + 1)) - 1));
}

struct Cap {
  uint64_t raw = 0;
  uint32_t mqes() const { return uint32_t(bits(raw, 15, 0)); }  // 0-based max queue entries
  bool cqr() const { return bits(raw, 16, 16); }                  // contiguous queues required
  uint32_t ams() const { return uint32_t(bits(raw, 18, 17)); }
  uint32_t to() const { return uint32_t(bits(raw, 31, 24)); }     // ready timeout, 500 ms units
  uint32_t dstrd() const { return uint32_t(bits(raw, 35, 32)); }  // doorbell stride 4 << DSTRD
  bool nssrs() const { return bits(raw, 36, 36); }
  uint32_t css() const { return uint32_t(bits(raw, 44, 37)); }
  uint32_t mpsmin() const { return uint32_t(bits(raw, 51, 48)); }  // 2 ^ (12 + MPSMIN)
  uint32_t mpsmax() const { return uint32_t(bits(raw, 55, 52)); }
  bool cmbs() const { return bits(raw, 57, 57); }

  static constexpr uint64_t make(uint32_t mqes, bool cqr, uint32_t to, uint32_t dstrd,
                                 uint32_t css, uint32_t mpsmin, uint32_t mpsmax) {
    return uint64_t(mqes & 0xFFFF) | (uint64_t(cqr) << 16) | (uint64_t(to & 0xFF) << 24) |
           (uint64_t(dstrd & 0xF) << 32) | (uint64_t(css & 0xFF) << 37) |
           (uint64_t(mpsmin & 0xF) << 48) | (uint64_t(mpsmax & 0xF) << 52);
  }
};
inline constexpr uint32_t CAP_CSS_NVM = 1u << 0;

struct Version {
  uint32_t raw = 0;
  uint32_t major() const { return raw >> 16; }
  uint32_t minor() const { return (raw >> 8) & 0xFF; }
  uint32_t tertiary() const { return raw & 0xFF; }
  static constexpr uint32_t make(uint32_t mj, uint32_t mn, uint32_t ter = 0) {
    return (mj << 16) | (mn << 8) | ter;
  }
};

// CC: Controller Configuration.
namespace cc {
inline constexpr uint32_t EN = 1u << 0;
constexpr uint32_t css(uint32_t v) { return (v & 7u) << 4; }
constexpr uint32_t mps(uint32_t v) { return (v & 0xFu) << 7; }  // page = 2 ^ (12 + MPS)
constexpr uint32_t ams(uint32_t v) { return (v & 7u) << 11; }
constexpr uint32_t shn(uint32_t v) { return (v & 3u) << 14; }
constexpr uint32_t iosqes(uint32_t v) { return (v & 0xFu) << 16; }
constexpr uint32_t iocqes(uint32_t v) { return (v & 0xFu) << 20; }
constexpr uint32_t get_css(uint32_t c) { return (c >> 4) & 7u; }
constexpr uint32_t get_mps(uint32_t c) { return (c >> 7) & 0xFu; }
constexpr uint32_t get_shn(uint32_t c) { return (c >> 14) & 3u; }
constexpr uint32_t get_iosqes(uint32_t c) { return (c >> 16) & 0xFu; }
constexpr uint32_t get_iocqes(uint32_t c) { return (c >> 20) & 0xFu; }
inline constexpr uint32_t SHN_NONE = 0, SHN_NORMAL = 1, SHN_ABRUPT = 2;
}  // namespace cc

// CSTS: Controller Status.
namespace csts {
inline constexpr uint32_t RDY = 1u << 0;
inline constexpr uint32_t CFS = 1u << 1;  // controller fatal status
constexpr uint32_t shst(uint32_t v) { return (v & 3u) << 2; }
constexpr uint32_t get_shst(uint32_t c) { return (c >> 2) & 3u; }
inline constexpr uint32_t SHST_NORMAL = 0, SHST_OCCURRING = 1, SHST_COMPLETE = 2;
inline constexpr uint32_t NSSRO = 1u << 4;
inline constexpr uint32_t PP = 1u << 5;
}  // namespace csts

// AQA: both sizes are 0-based.
namespace aqa {
constexpr uint32_t make(uint32_t asqs, uint32_t acqs) {
  return ((asqs - 1) & 0xFFFu) | (((acqs - 1) & 0xFFFu) << 16);
}
constexpr uint32_t asqs(uint32_t a) { return (a & 0xFFFu) + 1; }
constexpr uint32_t acqs(uint32_t a) { return ((a >> 16) & 0xFFFu) + 1; }
}  // namespace aqa

inline constexpr uint32_t SQE_SIZE_LOG2 = 6;  // 64-byte submission entries
inline constexpr uint32_t CQE_SIZE_LOG2 = 4;  // 16-byte completion entries
inline constexpr uint32_t ADMIN_QUEUE_MAX = 4096;

}  // namespace aisio::nvme
