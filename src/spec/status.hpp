// NVMe completion status: Status Code Type, Status Code and their names
// (NVMe Base Specification 2.0 section 4.6.1.2; NVM Command Set section 3.3.3).
#pragma once
#include <cstdint>
#include <string>

namespace aisio::nvme {

namespace sct {
inline constexpr uint8_t GENERIC = 0x0;
inline constexpr uint8_t COMMAND_SPECIFIC = 0x1;
inline constexpr uint8_t MEDIA = 0x2;
inline constexpr uint8_t PATH = 0x3;
inline constexpr uint8_t VENDOR = 0x7;
}  // namespace sct

namespace sc {
// Generic command status (SCT 0).
inline constexpr uint8_t SUCCESS = 0x00;
inline constexpr uint8_t INVALID_OPCODE = 0x01;
inline constexpr uint8_t INVALID_FIELD = 0x02;
inline constexpr uint8_t CID_CONFLICT = 0x03;
inline constexpr uint8_t DATA_TRANSFER_ERROR = 0x04;
inline constexpr uint8_t ABORTED_POWER_LOSS = 0x05;
inline constexpr uint8_t INTERNAL_ERROR = 0x06;
inline constexpr uint8_t ABORT_REQUESTED = 0x07;
inline constexpr uint8_t ABORTED_SQ_DELETION = 0x08;
inline constexpr uint8_t ABORTED_FAILED_FUSED = 0x09;
inline constexpr uint8_t ABORTED_MISSING_FUSED = 0x0A;
inline constexpr uint8_t INVALID_NAMESPACE_OR_FORMAT = 0x0B;
inline constexpr uint8_t COMMAND_SEQUENCE_ERROR = 0x0C;
inline constexpr uint8_t INVALID_SGL_SEGMENT_DESCRIPTOR = 0x0D;
inline constexpr uint8_t INVALID_NUMBER_OF_SGL_DESCRIPTORS = 0x0E;
inline constexpr uint8_t DATA_SGL_LENGTH_INVALID = 0x0F;
inline constexpr uint8_t METADATA_SGL_LENGTH_INVALID = 0x10;
inline constexpr uint8_t SGL_DESCRIPTOR_TYPE_INVALID = 0x11;
inline constexpr uint8_t INVALID_USE_OF_CMB = 0x12;
inline constexpr uint8_t PRP_OFFSET_INVALID = 0x13;
inline constexpr uint8_t ATOMIC_WRITE_UNIT_EXCEEDED = 0x14;
inline constexpr uint8_t OPERATION_DENIED = 0x15;
inline constexpr uint8_t SGL_OFFSET_INVALID = 0x16;
inline constexpr uint8_t NAMESPACE_WRITE_PROTECTED = 0x20;
inline constexpr uint8_t COMMAND_INTERRUPTED = 0x21;
// NVM command set generic status.
inline constexpr uint8_t LBA_OUT_OF_RANGE = 0x80;
inline constexpr uint8_t CAPACITY_EXCEEDED = 0x81;
inline constexpr uint8_t NAMESPACE_NOT_READY = 0x82;
inline constexpr uint8_t RESERVATION_CONFLICT = 0x83;
inline constexpr uint8_t FORMAT_IN_PROGRESS = 0x84;
// Command specific status (SCT 1).
inline constexpr uint8_t COMPLETION_QUEUE_INVALID = 0x00;
inline constexpr uint8_t INVALID_QUEUE_IDENTIFIER = 0x01;
inline constexpr uint8_t INVALID_QUEUE_SIZE = 0x02;
inline constexpr uint8_t ABORT_COMMAND_LIMIT_EXCEEDED = 0x03;
inline constexpr uint8_t ASYNC_EVENT_LIMIT_EXCEEDED = 0x05;
inline constexpr uint8_t INVALID_INTERRUPT_VECTOR = 0x08;
inline constexpr uint8_t INVALID_LOG_PAGE = 0x09;
inline constexpr uint8_t INVALID_FORMAT = 0x0A;
inline constexpr uint8_t INVALID_QUEUE_DELETION = 0x0C;
inline constexpr uint8_t FEATURE_NOT_SAVEABLE = 0x0D;
inline constexpr uint8_t FEATURE_NOT_CHANGEABLE = 0x0E;
inline constexpr uint8_t INVALID_CONTROLLER_IDENTIFIER = 0x1F;
inline constexpr uint8_t INVALID_SECONDARY_CONTROLLER_STATE = 0x20;
inline constexpr uint8_t INVALID_NUMBER_OF_CONTROLLER_RESOURCES = 0x21;
inline constexpr uint8_t INVALID_RESOURCE_IDENTIFIER = 0x22;
inline constexpr uint8_t CONFLICTING_ATTRIBUTES = 0x80;
inline constexpr uint8_t ATTEMPTED_WRITE_TO_READ_ONLY_RANGE = 0x82;
// Media and data integrity errors (SCT 2).
inline constexpr uint8_t WRITE_FAULT = 0x80;
inline constexpr uint8_t UNRECOVERED_READ_ERROR = 0x81;
inline constexpr uint8_t COMPARE_FAILURE = 0x85;
inline constexpr uint8_t ACCESS_DENIED = 0x86;
inline constexpr uint8_t DEALLOCATED_OR_UNWRITTEN = 0x87;
}  // namespace sc

// The 15-bit status field of a CQE (the phase bit removed).
struct Status {
  uint16_t field = 0;

  constexpr Status() = default;
  constexpr explicit Status(uint16_t f) : field(f) {}
  static constexpr Status make(uint8_t type, uint8_t code, bool dnr = false) {
    return Status(uint16_t(code | (uint16_t(type & 7u) << 8) | (dnr ? 1u << 14 : 0u)));
  }
  constexpr uint8_t sc() const { return uint8_t(field & 0xFFu); }
  constexpr uint8_t sct() const { return uint8_t((field >> 8) & 7u); }
  constexpr uint8_t crd() const { return uint8_t((field >> 11) & 3u); }
  constexpr bool more() const { return field & (1u << 13); }
  constexpr bool dnr() const { return field & (1u << 14); }
  constexpr bool ok() const { return (field & 0x7FFu) == 0; }
  constexpr bool is(uint8_t type, uint8_t code) const { return sct() == type && sc() == code; }
  friend constexpr bool operator==(Status a, Status b) { return (a.field & 0x7FFu) == (b.field & 0x7FFu); }
};

// "LBA Out of Range (SCT 0x0, SC 0x80)".
std::string status_name(Status s);
// Only the name, e.g. "LBA Out of Range"; "Unknown" for codes the spec does not define.
const char* status_code_name(uint8_t sct, uint8_t sc);

}  // namespace aisio::nvme
