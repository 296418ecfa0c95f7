// Virtualization enhancements (SR-IOV flexible resources): Identify Primary Controller
// Capabilities (CNS 14h), Identify Secondary Controller List (CNS 15h) and the
// Virtualization Management command (admin 1Ch). NVMe Base Specification 2.0
// sections 5.22 and 8.26, figures 279-281 and 327-329.
#pragma once
#include <cstddef>
#include <cstdint>

#include "spec/commands.hpp"

namespace aisio::nvme {

namespace cns {
inline constexpr uint8_t PRIMARY_CONTROLLER_CAPS = 0x14;
inline constexpr uint8_t SECONDARY_CONTROLLER_LIST = 0x15;
}  // namespace cns

// Identify Primary Controller Capabilities (4096 bytes).
struct PrimaryControllerCaps {
  uint16_t cntlid;   // this (primary) controller's identifier
  uint16_t portid;
  uint8_t crt;       // controller resource types: bit 0 VQ, bit 1 VI supported
  uint8_t rsvd5[27];
  uint32_t vqfrt;    // 32: VQ flexible resources in total
  uint32_t vqrfa;    // 36: VQ flexible resources assigned to secondary controllers
  uint16_t vqrfap;   // 40: VQ flexible resources allocated to the primary
  uint16_t vqprt;    // 42: VQ private resources of the primary
  uint16_t vqfrsm;   // 44: most VQ flexible resources one secondary may get
  uint16_t vqgran;   // 46: preferred VQ assignment granularity
  uint8_t rsvd48[16];
  uint32_t vifrt;    // 64: VI flexible resources in total
  uint32_t virfa;
  uint16_t virfap;
  uint16_t viprt;
  uint16_t vifrsm;   // 76
  uint16_t vigran;   // 78
  uint8_t rsvd80[4016];
};
static_assert(sizeof(PrimaryControllerCaps) == 4096);
static_assert(offsetof(PrimaryControllerCaps, vqfrt) == 32);
static_assert(offsetof(PrimaryControllerCaps, vqfrsm) == 44);
static_assert(offsetof(PrimaryControllerCaps, vifrt) == 64);  // as QEMU 7.2 and nvme-cli lay it out
static_assert(offsetof(PrimaryControllerCaps, vigran) == 78);

namespace crt {
inline constexpr uint8_t VQ = 1u << 0;
inline constexpr uint8_t VI = 1u << 1;
}  // namespace crt

// One Secondary Controller Entry (32 bytes).
struct SecondaryControllerEntry {
  uint16_t scid;   // secondary controller identifier
  uint16_t pcid;   // its primary controller
  uint8_t scs;     // bit 0: online
  uint8_t rsvd5[3];
  uint16_t vfn;    // virtual function number (1-based), 0: not a VF
  uint16_t nvq;    // VQ flexible resources assigned
  uint16_t nvi;    // VI flexible resources assigned
  uint8_t rsvd14[18];
};
static_assert(sizeof(SecondaryControllerEntry) == 32);

// Identify Secondary Controller List (4096 bytes): entries with SCID >= CDW10.CNTID.
struct SecondaryControllerList {
  uint8_t count;   // number of identifiers that follow
  uint8_t rsvd1[31];
  SecondaryControllerEntry entries[127];
};
static_assert(sizeof(SecondaryControllerList) == 4096);
inline constexpr unsigned MAX_SECONDARY_ENTRIES = 127;

// Virtualization Management CDW10 ACT.
namespace virt_act {
inline constexpr uint8_t PRIMARY_FLEXIBLE_ALLOCATION = 0x1;
inline constexpr uint8_t SECONDARY_OFFLINE = 0x7;
inline constexpr uint8_t SECONDARY_ASSIGN = 0x8;
inline constexpr uint8_t SECONDARY_ONLINE = 0x9;
}  // namespace virt_act
// Virtualization Management CDW10 RT.
enum class VirtResource : uint8_t { vq = 0, vi = 1 };
constexpr const char* virt_resource_name(VirtResource r) { return r == VirtResource::vq ? "VQ" : "VI"; }

namespace cmd {
// Virtualization Management: CDW10 = ACT (3:0) | RT (10:8) | CNTLID (31:16), CDW11 = NR.
inline Sqe virtualization_management(uint8_t act, uint16_t cntlid, VirtResource rt = VirtResource::vq,
                                     uint16_t nr = 0) {
  Sqe s = make(admin::VIRTUALIZATION_MANAGEMENT);
  s.cdw10 = (act & 0xFu) | (uint32_t(uint8_t(rt) & 7u) << 8) | (uint32_t(cntlid) << 16);
  s.cdw11 = nr;
  return s;
}
inline Sqe virt_assign(uint16_t scid, VirtResource rt, uint16_t nr) {
  return virtualization_management(virt_act::SECONDARY_ASSIGN, scid, rt, nr);
}
inline Sqe virt_online(uint16_t scid) { return virtualization_management(virt_act::SECONDARY_ONLINE, scid); }
inline Sqe virt_offline(uint16_t scid) { return virtualization_management(virt_act::SECONDARY_OFFLINE, scid); }
inline Sqe identify_primary_caps() { return identify(cns::PRIMARY_CONTROLLER_CAPS, 0); }
inline Sqe identify_secondary_list(uint16_t first_scid = 0) {
  return identify(cns::SECONDARY_CONTROLLER_LIST, 0, first_scid);
}
}  // namespace cmd

// The fields of a Virtualization Management command as the controller reads them.
constexpr uint8_t virt_act_of(const Sqe& s) { return s.cdw10 & 0xFu; }
constexpr uint8_t virt_rt_of(const Sqe& s) { return (s.cdw10 >> 8) & 7u; }
constexpr uint16_t virt_cntlid_of(const Sqe& s) { return uint16_t(s.cdw10 >> 16); }
constexpr uint16_t virt_nr_of(const Sqe& s) { return uint16_t(s.cdw11); }

}  // namespace aisio::nvme
