#include "spec/status.hpp"

#include <fmt/format.h>

namespace aisio::nvme {

namespace {
const char* generic_name(uint8_t code) {
  switch (code) {
    case 0x00: return "Successful Completion";
    case 0x01: return "Invalid Command Opcode";
    case 0x02: return "Invalid Field in Command";
    case 0x03: return "Command ID Conflict";
    case 0x04: return "Data Transfer Error";
    case 0x05: return "Commands Aborted due to Power Loss Notification";
    case 0x06: return "Internal Error";
    case 0x07: return "Command Abort Requested";
    case 0x08: return "Command Aborted due to SQ Deletion";
    case 0x09: return "Command Aborted due to Failed Fused Command";
    case 0x0A: return "Command Aborted due to Missing Fused Command";
    case 0x0B: return "Invalid Namespace or Format";
    case 0x0C: return "Command Sequence Error";
    case 0x0D: return "Invalid SGL Segment Descriptor";
    case 0x0E: return "Invalid Number of SGL Descriptors";
    case 0x0F: return "Data SGL Length Invalid";
    case 0x10: return "Metadata SGL Length Invalid";
    case 0x11: return "SGL Descriptor Type Invalid";
    case 0x12: return "Invalid Use of Controller Memory Buffer";
    case 0x13: return "PRP Offset Invalid";
    case 0x14: return "Atomic Write Unit Exceeded";
    case 0x15: return "Operation Denied";
    case 0x16: return "SGL Offset Invalid";
    case 0x18: return "Host Identifier Inconsistent Format";
    case 0x19: return "Keep Alive Timer Expired";
    case 0x1A: return "Keep Alive Timeout Invalid";
    case 0x1B: return "Command Aborted due to Preempt and Abort";
    case 0x1C: return "Sanitize Failed";
    case 0x1D: return "Sanitize In Progress";
    case 0x1E: return "SGL Data Block Granularity Invalid";
    case 0x1F: return "Command Not Supported for Queue in CMB";
    case 0x20: return "Namespace is Write Protected";
    case 0x21: return "Command Interrupted";
    case 0x22: return "Transient Transport Error";
    case 0x23: return "Command Prohibited by Command and Feature Lockdown";
    case 0x24: return "Admin Command Media Not Ready";
    case 0x80: return "LBA Out of Range";
    case 0x81: return "Capacity Exceeded";
    case 0x82: return "Namespace Not Ready";
    case 0x83: return "Reservation Conflict";
    case 0x84: return "Format In Progress";
    case 0x85: return "Invalid Value Size";
    case 0x86: return "Invalid Key Size";
    case 0x87: return "KV Key Does Not Exist";
    case 0x88: return "Unrecovered Error";
    case 0x89: return "Key Exists";
    default: return nullptr;
  }
}

const char* command_specific_name(uint8_t code) {
  switch (code) {
    case 0x00: return "Completion Queue Invalid";
    case 0x01: return "Invalid Queue Identifier";
    case 0x02: return "Invalid Queue Size";
    case 0x03: return "Abort Command Limit Exceeded";
    case 0x05: return "Asynchronous Event Request Limit Exceeded";
    case 0x06: return "Invalid Firmware Slot";
    case 0x07: return "Invalid Firmware Image";
    case 0x08: return "Invalid Interrupt Vector";
    case 0x09: return "Invalid Log Page";
    case 0x0A: return "Invalid Format";
    case 0x0B: return "Firmware Activation Requires Conventional Reset";
    case 0x0C: return "Invalid Queue Deletion";
    case 0x0D: return "Feature Identifier Not Saveable";
    case 0x0E: return "Feature Not Changeable";
    case 0x0F: return "Feature Not Namespace Specific";
    case 0x10: return "Firmware Activation Requires NVM Subsystem Reset";
    case 0x11: return "Firmware Activation Requires Controller Level Reset";
    case 0x12: return "Firmware Activation Requires Maximum Time Violation";
    case 0x13: return "Firmware Activation Prohibited";
    case 0x14: return "Overlapping Range";
    case 0x15: return "Namespace Insufficient Capacity";
    case 0x16: return "Namespace Identifier Unavailable";
    case 0x18: return "Namespace Already Attached";
    case 0x19: return "Namespace Is Private";
    case 0x1A: return "Namespace Not Attached";
    case 0x1B: return "Thin Provisioning Not Supported";
    case 0x1C: return "Controller List Invalid";
    case 0x1D: return "Device Self-test In Progress";
    case 0x1E: return "Boot Partition Write Prohibited";
    case 0x1F: return "Invalid Controller Identifier";
    case 0x20: return "Invalid Secondary Controller State";
    case 0x21: return "Invalid Number of Controller Resources";
    case 0x22: return "Invalid Resource Identifier";
    case 0x23: return "Sanitize Prohibited While Persistent Memory Region is Enabled";
    case 0x24: return "ANA Group Identifier Invalid";
    case 0x25: return "ANA Attach Failed";
    case 0x80: return "Conflicting Attributes";
    case 0x81: return "Invalid Protection Information";
    case 0x82: return "Attempted Write to Read Only Range";
    case 0x83: return "Command Size Limit Exceeded";
    default: return nullptr;
  }
}

const char* media_name(uint8_t code) {
  switch (code) {
    case 0x80: return "Write Fault";
    case 0x81: return "Unrecovered Read Error";
    case 0x82: return "End-to-end Guard Check Error";
    case 0x83: return "End-to-end Application Tag Check Error";
    case 0x84: return "End-to-end Reference Tag Check Error";
    case 0x85: return "Compare Failure";
    case 0x86: return "Access Denied";
    case 0x87: return "Deallocated or Unwritten Logical Block";
    case 0x88: return "End-to-End Storage Tag Check Error";
    default: return nullptr;
  }
}

const char* path_name(uint8_t code) {
  switch (code) {
    case 0x00: return "Internal Path Error";
    case 0x01: return "Asymmetric Access Persistent Loss";
    case 0x02: return "Asymmetric Access Inaccessible";
    case 0x03: return "Asymmetric Access Transition";
    case 0x60: return "Controller Pathing Error";
    case 0x70: return "Host Pathing Error";
    case 0x71: return "Command Aborted By Host";
    default: return nullptr;
  }
}
}  // namespace

const char* status_code_name(uint8_t type, uint8_t code) {
  const char* n = nullptr;
  switch (type) {
    case sct::GENERIC: n = generic_name(code); break;
    case sct::COMMAND_SPECIFIC: n = command_specific_name(code); break;
    case sct::MEDIA: n = media_name(code); break;
    case sct::PATH: n = path_name(code); break;
    case sct::VENDOR: n = "Vendor Specific"; break;
    default: break;
  }
  return n ? n : "Unknown";
}

std::string status_name(Status s) {
  return fmt::format("{} (SCT {:#x}, SC {:#04x}{})", status_code_name(s.sct(), s.sc()), s.sct(),
                     s.sc(), s.dnr() ? ", DNR" : "");
}

}  // namespace aisio::nvme
