// Identify Controller and Identify Namespace data structures
// (NVMe Base Specification 2.0 figure 275; NVM Command Set 1.0 figure 97).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace aisio::nvme {

struct IdentifyController {
  uint16_t vid;
  uint16_t ssvid;
  char sn[20];
  char mn[40];
  char fr[8];
  uint8_t rab;
  uint8_t ieee[3];
  uint8_t cmic;
  uint8_t mdts;      // max data transfer: 2^MDTS units of CAP.MPSMIN; 0 = no limit
  uint16_t cntlid;
  uint32_t ver;
  uint32_t rtd3r;
  uint32_t rtd3e;
  uint32_t oaen;
  uint32_t ctratt;
  uint16_t rrls;
  uint8_t rsvd102[9];
  uint8_t cntrltype;
  uint8_t fguid[16];
  uint16_t crdt1, crdt2, crdt3;
  uint8_t rsvd134[122];
  uint16_t oacs;     // 256: optional admin command support
  uint8_t acl;
  uint8_t aerl;
  uint8_t frmw;
  uint8_t lpa;
  uint8_t elpe;      // error log page entries, 0-based
  uint8_t npss;
  uint8_t avscc;
  uint8_t apsta;
  uint16_t wctemp;
  uint16_t cctemp;
  uint8_t rsvd270[242];
  uint8_t sqes;      // 512: 3:0 required, 7:4 maximum (log2)
  uint8_t cqes;
  uint16_t maxcmd;
  uint32_t nn;       // 516: number of namespaces
  uint16_t oncs;     // 520: optional NVM command support
  uint16_t fuses;
  uint8_t fna;
  uint8_t vwc;       // 525: volatile write cache
  uint16_t awun;
  uint16_t awupf;
  uint8_t icsvscc;
  uint8_t nwpc;
  uint16_t acwu;
  uint16_t rsvd534;
  uint32_t sgls;     // 536: SGL support
  uint32_t mnan;
  uint8_t rsvd544[224];
  char subnqn[256];  // 768
  uint8_t rsvd1024[1024];
  uint8_t psd[1024];  // 2048: power state descriptors
  uint8_t vs[1024];
};
static_assert(sizeof(IdentifyController) == 4096);
static_assert(offsetof(IdentifyController, mdts) == 77);
static_assert(offsetof(IdentifyController, oacs) == 256);
static_assert(offsetof(IdentifyController, sqes) == 512);
static_assert(offsetof(IdentifyController, nn) == 516);
static_assert(offsetof(IdentifyController, oncs) == 520);
static_assert(offsetof(IdentifyController, vwc) == 525);
static_assert(offsetof(IdentifyController, sgls) == 536);
static_assert(offsetof(IdentifyController, subnqn) == 768);

namespace oncs {
inline constexpr uint16_t COMPARE = 1u << 0;
inline constexpr uint16_t WRITE_UNCORRECTABLE = 1u << 1;
inline constexpr uint16_t DATASET_MANAGEMENT = 1u << 2;
inline constexpr uint16_t WRITE_ZEROES = 1u << 3;
}  // namespace oncs
namespace oacs {
inline constexpr uint16_t NS_MANAGEMENT = 1u << 3;
inline constexpr uint16_t VIRTUALIZATION_MANAGEMENT = 1u << 7;
}  // namespace oacs
// SGLS 1:0: 01b SGLs supported, 10b supported with dword alignment and granularity.
constexpr bool sgls_supported(uint32_t sgls) { return (sgls & 3u) != 0; }

struct LbaFormat {
  uint16_t ms;     // metadata size
  uint8_t lbads;   // LBA data size, log2
  uint8_t rp;      // relative performance
};
static_assert(sizeof(LbaFormat) == 4);

struct IdentifyNamespace {
  uint64_t nsze;    // namespace size in logical blocks
  uint64_t ncap;
  uint64_t nuse;
  uint8_t nsfeat;
  uint8_t nlbaf;    // number of LBA formats, 0-based
  uint8_t flbas;    // 3:0 low index, 6:5 high index of the format in use
  uint8_t mc;
  uint8_t dpc;
  uint8_t dps;
  uint8_t nmic;
  uint8_t rescap;
  uint8_t fpi;
  uint8_t dlfeat;
  uint16_t nawun;
  uint16_t nawupf;
  uint16_t nacwu;
  uint16_t nabsn;
  uint16_t nabo;
  uint16_t nabspf;
  uint16_t noiob;
  uint8_t nvmcap[16];
  uint16_t npwg, npwa, npdg, npda, nows;
  uint8_t rsvd74[18];
  uint32_t anagrpid;
  uint8_t rsvd96[3];
  uint8_t nsattr;
  uint16_t nvmsetid;
  uint16_t endgid;
  uint8_t nguid[16];
  uint8_t eui64[8];
  LbaFormat lbaf[64];  // 128
  uint8_t vs[3712];
};
static_assert(sizeof(IdentifyNamespace) == 4096);
static_assert(offsetof(IdentifyNamespace, flbas) == 26);
static_assert(offsetof(IdentifyNamespace, lbaf) == 128);

constexpr uint32_t flbas_index(uint8_t flbas) { return (flbas & 0xFu) | ((flbas >> 5) & 3u) << 4; }
inline uint32_t lba_size(const IdentifyNamespace& ns) {
  return 1u << ns.lbaf[flbas_index(ns.flbas)].lbads;
}

// Identify strings are space padded, not NUL terminated.
inline std::string trim_id_string(const char* p, size_t n) {
  std::string s(p, n);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

}  // namespace aisio::nvme
