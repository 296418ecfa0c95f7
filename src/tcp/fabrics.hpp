// NVMe over Fabrics commands (NVMe over Fabrics 1.1 section 3.3 / Base 2.0 section 6):
// Connect, Property Get and Property Set, built as SQEs; the Connect data; the
// tcp://HOST[:PORT]/SUBNQN address; the host NQN and Host Identifier.
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "spec/commands.hpp"

namespace aisio::tcp {

namespace fabrics {
inline constexpr uint8_t OPC = 0x7F;  // every Fabrics command
// FCTYPE (SQE byte 4); bits 1:0 give the data direction as an opcode's do.
inline constexpr uint8_t PROPERTY_SET = 0x00;
inline constexpr uint8_t CONNECT = 0x01;
inline constexpr uint8_t PROPERTY_GET = 0x04;
inline constexpr uint16_t DYNAMIC_CNTLID = 0xFFFF;  // Connect on the admin queue: any controller
inline constexpr uint32_t CONNECT_DATA_LEN = 1024;

// Connect data (1024 bytes).
struct ConnectData {
  uint8_t hostid[16];
  uint16_t cntlid;
  uint8_t rsvd18[238];
  char subnqn[256];
  char hostnqn[256];
  uint8_t rsvd768[256];
};
static_assert(sizeof(ConnectData) == CONNECT_DATA_LEN);

// SQE builders (CID and DPTR are filled in by the queue pair).
nvme::Sqe connect(uint16_t qid, uint16_t sqsize_0based, uint32_t kato_ms);
nvme::Sqe property_get(uint32_t offset, bool eight_bytes);
nvme::Sqe property_set(uint32_t offset, uint64_t value, bool eight_bytes);
ConnectData connect_data(const std::array<uint8_t, 16>& hostid, uint16_t cntlid, const std::string& subnqn,
                         const std::string& hostnqn);
}  // namespace fabrics

// tcp://HOST[:PORT]/SUBNQN[?ctrl_loss_tmo=SECONDS]; HOST may be [IPv6]. ctrl_loss_tmo (as
// nvme-cli names it): how long to keep reconnecting after a connection breaks (0: never
// reconnect; absent: the controller options' default). Throws Error(invalid_argument)
// saying what is missing or wrong.
struct Address {
  std::string host;
  uint16_t port = 4420;
  std::string subnqn;
  int ctrl_loss_tmo_s = -1;  // -1: not given
  std::string describe() const;  // tcp://host:port/subnqn
};
Address parse_address(const std::string& url);

// The host's identity: hostnqn from /etc/nvme/hostnqn (the file nvme-cli and the kernel
// initiator share), else one generated from a random UUID (nqn.2014-08.org.nvmexpress:
// uuid:...); hostid from /etc/nvme/hostid, else the UUID inside the NQN, else random.
struct HostIdentity {
  std::string nqn;
  std::array<uint8_t, 16> id{};
};
HostIdentity host_identity(const std::string& etc_nvme = "/etc/nvme");

}  // namespace aisio::tcp
