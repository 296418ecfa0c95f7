// Submission and completion queue entries and command opcodes
// (NVMe Base Specification 2.0 sections 4.2, 4.6 and 5; NVM Command Set 1.0 section 3).
#pragma once
#include <cstdint>
#include <cstring>

namespace aisio::nvme {

// 64-byte Submission Queue Entry.
struct Sqe {
  uint8_t opc;      // CDW0 7:0 opcode
  uint8_t flags;    // CDW0 9:8 FUSE, 15:14 PSDT
  uint16_t cid;     // CDW0 31:16 command identifier
  uint32_t nsid;    // CDW1
  uint32_t cdw2;
  uint32_t cdw3;
  uint64_t mptr;    // CDW4-5 metadata pointer
  uint64_t prp1;    // CDW6-7 DPTR: PRP entry 1, or SGL1 address
  uint64_t prp2;    // CDW8-9 DPTR: PRP entry 2, or SGL1 length/identifier
  uint32_t cdw10;
  uint32_t cdw11;
  uint32_t cdw12;
  uint32_t cdw13;
  uint32_t cdw14;
  uint32_t cdw15;
};
static_assert(sizeof(Sqe) == 64, "SQE is 64 bytes");

// PSDT (CDW0 15:14): how DPTR is to be read.
inline constexpr uint8_t PSDT_PRP = 0u << 6;
inline constexpr uint8_t PSDT_SGL_MPTR_CONTIG = 1u << 6;
inline constexpr uint8_t PSDT_SGL_MPTR_SGL = 2u << 6;
constexpr uint8_t psdt(uint8_t flags) { return (flags >> 6) & 3u; }
constexpr uint8_t fuse(uint8_t flags) { return flags & 3u; }

// 16-byte Completion Queue Entry.
struct Cqe {
  uint32_t dw0;     // command specific
  uint32_t dw1;
  uint16_t sqhd;    // SQ head pointer as the controller consumed it
  uint16_t sqid;
  uint16_t cid;
  uint16_t status;  // bit 0: phase tag, 15:1 status field (SC, SCT, CRD, M, DNR)
};
static_assert(sizeof(Cqe) == 16, "CQE is 16 bytes");

constexpr bool cqe_phase(uint16_t status) { return status & 1u; }
constexpr uint16_t cqe_status_field(uint16_t status) { return status >> 1; }

// SGL descriptor (16 bytes), section 4.1.3.
struct SglDescriptor {
  uint64_t addr;
  uint32_t length;
  uint8_t rsvd[3];
  uint8_t id;  // 7:4 type, 3:0 subtype
};
static_assert(sizeof(SglDescriptor) == 16, "SGL descriptor is 16 bytes");
namespace sgl {
inline constexpr uint8_t DATA_BLOCK = 0x0, BIT_BUCKET = 0x1, SEGMENT = 0x2, LAST_SEGMENT = 0x3;
constexpr uint8_t id(uint8_t type, uint8_t subtype = 0) { return uint8_t(type << 4 | subtype); }
constexpr uint8_t type(uint8_t id) { return id >> 4; }
}  // namespace sgl

// Admin command set opcodes.
namespace admin {
inline constexpr uint8_t DELETE_IO_SQ = 0x00;
inline constexpr uint8_t CREATE_IO_SQ = 0x01;
inline constexpr uint8_t GET_LOG_PAGE = 0x02;
inline constexpr uint8_t DELETE_IO_CQ = 0x04;
inline constexpr uint8_t CREATE_IO_CQ = 0x05;
inline constexpr uint8_t IDENTIFY = 0x06;
inline constexpr uint8_t ABORT = 0x08;
inline constexpr uint8_t SET_FEATURES = 0x09;
inline constexpr uint8_t GET_FEATURES = 0x0A;
inline constexpr uint8_t ASYNC_EVENT_REQUEST = 0x0C;
inline constexpr uint8_t NAMESPACE_MANAGEMENT = 0x0D;
inline constexpr uint8_t FIRMWARE_COMMIT = 0x10;
inline constexpr uint8_t FIRMWARE_DOWNLOAD = 0x11;
inline constexpr uint8_t NAMESPACE_ATTACHMENT = 0x15;
inline constexpr uint8_t KEEP_ALIVE = 0x18;
inline constexpr uint8_t VIRTUALIZATION_MANAGEMENT = 0x1C;  // SR-IOV flexible resources
inline constexpr uint8_t FORMAT_NVM = 0x80;
}  // namespace admin

// NVM command set I/O opcodes.
namespace nvm {
inline constexpr uint8_t FLUSH = 0x00;
inline constexpr uint8_t WRITE = 0x01;
inline constexpr uint8_t READ = 0x02;
inline constexpr uint8_t WRITE_UNCORRECTABLE = 0x04;
inline constexpr uint8_t COMPARE = 0x05;
inline constexpr uint8_t WRITE_ZEROES = 0x08;
inline constexpr uint8_t DATASET_MANAGEMENT = 0x09;
inline constexpr uint32_t RW_FUA = 1u << 30;
inline constexpr uint32_t WZ_DEAC = 1u << 25;
inline constexpr uint32_t DSM_AD = 1u << 2;  // CDW11: attribute deallocate
}  // namespace nvm

// Identify CNS values.
namespace cns {
inline constexpr uint8_t NAMESPACE = 0x00;
inline constexpr uint8_t CONTROLLER = 0x01;
inline constexpr uint8_t ACTIVE_NSID_LIST = 0x02;
}  // namespace cns

// Feature identifiers.
namespace feature {
inline constexpr uint8_t ARBITRATION = 0x01;
inline constexpr uint8_t POWER_MANAGEMENT = 0x02;
inline constexpr uint8_t TEMPERATURE_THRESHOLD = 0x04;
inline constexpr uint8_t VOLATILE_WRITE_CACHE = 0x06;
inline constexpr uint8_t NUMBER_OF_QUEUES = 0x07;
inline constexpr uint8_t INTERRUPT_COALESCING = 0x08;
}  // namespace feature

// Log page identifiers.
namespace log_page {
inline constexpr uint8_t ERROR_INFO = 0x01;
inline constexpr uint8_t SMART = 0x02;
inline constexpr uint8_t FIRMWARE_SLOT = 0x03;
}  // namespace log_page

// Dataset Management range (16 bytes).
struct DsmRange {
  uint32_t attributes;
  uint32_t nlb;  // length in logical blocks (1-based here, unlike CDW12)
  uint64_t slba;
};
static_assert(sizeof(DsmRange) == 16);

// Error Information log entry (64 bytes).
struct ErrorLogEntry {
  uint64_t error_count;
  uint16_t sqid;
  uint16_t cid;
  uint16_t status;  // phase bit 0 as in the CQE
  uint16_t param_error_location;
  uint64_t lba;
  uint32_t nsid;
  uint8_t vendor_info;
  uint8_t trtype;
  uint16_t rsvd;
  uint64_t cmd_specific;
  uint16_t trtype_specific;
  uint8_t rsvd2[22];
};
static_assert(sizeof(ErrorLogEntry) == 64);

// SMART / Health Information log page (512 bytes); the fields we fill.
struct SmartLog {
  uint8_t critical_warning;
  uint16_t composite_temperature;  // Kelvin
  uint8_t available_spare;
  uint8_t available_spare_threshold;
  uint8_t percentage_used;
  uint8_t endurance_group_warning;
  uint8_t rsvd7[25];
  uint8_t data_units_read[16];     // thousands of 512-byte units
  uint8_t data_units_written[16];
  uint8_t host_read_commands[16];
  uint8_t host_write_commands[16];
  uint8_t controller_busy_time[16];
  uint8_t power_cycles[16];
  uint8_t power_on_hours[16];
  uint8_t unsafe_shutdowns[16];
  uint8_t media_errors[16];
  uint8_t num_err_log_entries[16];
  uint8_t rest[320];
} __attribute__((packed));
static_assert(sizeof(SmartLog) == 512);

// Command builders. Each returns an SQE with CID left zero; the queue assigns it.
namespace cmd {
inline Sqe make(uint8_t opc, uint32_t nsid = 0) {
  Sqe s;
  std::memset(&s, 0, sizeof s);
  s.opc = opc;
  s.nsid = nsid;
  return s;
}
inline Sqe identify(uint8_t cns_value, uint32_t nsid, uint16_t cntid = 0) {
  Sqe s = make(admin::IDENTIFY, nsid);
  s.cdw10 = cns_value | (uint32_t(cntid) << 16);
  return s;
}
inline Sqe create_io_cq(uint16_t qid, uint32_t entries, uint64_t base, bool contiguous = true,
                        uint16_t iv = 0, bool ien = false) {
  Sqe s = make(admin::CREATE_IO_CQ);
  s.prp1 = base;
  s.cdw10 = qid | ((entries - 1) << 16);
  s.cdw11 = (contiguous ? 1u : 0u) | (ien ? 2u : 0u) | (uint32_t(iv) << 16);
  return s;
}
inline Sqe create_io_sq(uint16_t qid, uint32_t entries, uint64_t base, uint16_t cqid,
                        bool contiguous = true) {
  Sqe s = make(admin::CREATE_IO_SQ);
  s.prp1 = base;
  s.cdw10 = qid | ((entries - 1) << 16);
  s.cdw11 = (contiguous ? 1u : 0u) | (uint32_t(cqid) << 16);
  return s;
}
inline Sqe delete_io_sq(uint16_t qid) {
  Sqe s = make(admin::DELETE_IO_SQ);
  s.cdw10 = qid;
  return s;
}
inline Sqe delete_io_cq(uint16_t qid) {
  Sqe s = make(admin::DELETE_IO_CQ);
  s.cdw10 = qid;
  return s;
}
// Number of Queues: both counts are 1-based here and encoded 0-based.
inline Sqe set_num_queues(uint16_t nsq, uint16_t ncq) {
  Sqe s = make(admin::SET_FEATURES);
  s.cdw10 = feature::NUMBER_OF_QUEUES;
  s.cdw11 = uint32_t(nsq - 1) | (uint32_t(ncq - 1) << 16);
  return s;
}
inline Sqe get_features(uint8_t fid, uint32_t nsid = 0) {
  Sqe s = make(admin::GET_FEATURES, nsid);
  s.cdw10 = fid;
  return s;
}
inline Sqe set_features(uint8_t fid, uint32_t cdw11, uint32_t nsid = 0) {
  Sqe s = make(admin::SET_FEATURES, nsid);
  s.cdw10 = fid;
  s.cdw11 = cdw11;
  return s;
}
// bytes must be a multiple of 4.
inline Sqe get_log_page(uint8_t lid, uint32_t bytes, uint32_t nsid = 0xFFFFFFFFu) {
  Sqe s = make(admin::GET_LOG_PAGE, nsid);
  uint32_t numd = bytes / 4 - 1;
  s.cdw10 = lid | ((numd & 0xFFFFu) << 16);
  s.cdw11 = numd >> 16;
  return s;
}
inline Sqe abort(uint16_t sqid, uint16_t cid) {
  Sqe s = make(admin::ABORT);
  s.cdw10 = sqid | (uint32_t(cid) << 16);
  return s;
}
// nlb is 1-based here; CDW12 holds it 0-based.
inline Sqe rw(uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb) {
  Sqe s = make(opc, nsid);
  s.cdw10 = uint32_t(slba);
  s.cdw11 = uint32_t(slba >> 32);
  s.cdw12 = (nlb - 1) & 0xFFFFu;
  return s;
}
inline Sqe read(uint32_t nsid, uint64_t slba, uint32_t nlb) { return rw(nvm::READ, nsid, slba, nlb); }
inline Sqe write(uint32_t nsid, uint64_t slba, uint32_t nlb) { return rw(nvm::WRITE, nsid, slba, nlb); }
inline Sqe write_zeroes(uint32_t nsid, uint64_t slba, uint32_t nlb, bool deallocate = false) {
  Sqe s = rw(nvm::WRITE_ZEROES, nsid, slba, nlb);
  if (deallocate) s.cdw12 |= nvm::WZ_DEAC;
  return s;
}
inline Sqe flush(uint32_t nsid) { return make(nvm::FLUSH, nsid); }
// nranges is 1-based; the range list is the data buffer.
inline Sqe dsm_deallocate(uint32_t nsid, uint32_t nranges) {
  Sqe s = make(nvm::DATASET_MANAGEMENT, nsid);
  s.cdw10 = (nranges - 1) & 0xFFu;
  s.cdw11 = nvm::DSM_AD;
  return s;
}
}  // namespace cmd

// Fields of an SQE as the controller reads them.
constexpr uint64_t sqe_slba(const Sqe& s) { return uint64_t(s.cdw10) | (uint64_t(s.cdw11) << 32); }
constexpr uint32_t sqe_nlb(const Sqe& s) { return (s.cdw12 & 0xFFFFu) + 1; }

}  // namespace aisio::nvme

// Additions used by the software controller (emu/); kept here so host and device share names.
namespace aisio::nvme {
namespace cns {
inline constexpr uint8_t NS_ID_DESCRIPTOR_LIST = 0x03;
}  // namespace cns
namespace feature {
inline constexpr uint8_t INTERRUPT_VECTOR_CONFIG = 0x09;
inline constexpr uint8_t WRITE_ATOMICITY = 0x0A;
inline constexpr uint8_t ASYNC_EVENT_CONFIG = 0x0B;
inline constexpr uint32_t SET_SAVE = 1u << 31;  // Set Features CDW10.SV
constexpr uint32_t get_sel(uint32_t cdw10) { return (cdw10 >> 8) & 7u; }  // Get Features CDW10.SEL
}  // namespace feature
namespace log_page {
inline constexpr uint32_t RAE = 1u << 15;  // Get Log Page CDW10: retain asynchronous event
}  // namespace log_page

// Asynchronous Event Request completion dword 0 (section 5.2).
namespace aer {
inline constexpr uint8_t TYPE_ERROR = 0x0;
inline constexpr uint8_t TYPE_SMART = 0x1;
inline constexpr uint8_t TYPE_NOTICE = 0x2;
// Error status event information.
inline constexpr uint8_t INFO_INVALID_DOORBELL_REGISTER = 0x00;  // write to a non-existent queue
inline constexpr uint8_t INFO_INVALID_DOORBELL_VALUE = 0x01;     // value out of the queue's range
inline constexpr uint8_t INFO_DIAGNOSTIC_FAILURE = 0x02;
inline constexpr uint8_t INFO_PERSISTENT_INTERNAL_ERROR = 0x03;
constexpr uint32_t make_dw0(uint8_t type, uint8_t info, uint8_t lid) {
  return uint32_t(type & 7u) | (uint32_t(info) << 8) | (uint32_t(lid) << 16);
}
constexpr uint8_t type(uint32_t dw0) { return dw0 & 7u; }
constexpr uint8_t info(uint32_t dw0) { return (dw0 >> 8) & 0xFFu; }
constexpr uint8_t log_page(uint32_t dw0) { return (dw0 >> 16) & 0xFFu; }
}  // namespace aer

// Namespace Identification Descriptor types (Identify CNS 03h).
namespace nidt {
inline constexpr uint8_t EUI64 = 0x1, NGUID = 0x2, UUID = 0x3, CSI = 0x4;
}  // namespace nidt
}  // namespace aisio::nvme
