#include "tcp/fabrics.hpp"

#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <random>

#include "common/error.hpp"

namespace aisio::tcp {

namespace fabrics {
namespace {
nvme::Sqe fabrics_sqe(uint8_t fctype) {
  nvme::Sqe s{};
  s.opc = OPC;
  s.nsid = fctype;  // SQE byte 4 is FCTYPE in a Fabrics command
  return s;
}
}  // namespace

nvme::Sqe connect(uint16_t qid, uint16_t sqsize_0based, uint32_t kato_ms) {
  nvme::Sqe s = fabrics_sqe(CONNECT);
  s.cdw10 = uint32_t(qid) << 16;  // RECFMT 0
  s.cdw11 = sqsize_0based;        // CATTR 0
  s.cdw12 = kato_ms;
  return s;
}

nvme::Sqe property_get(uint32_t offset, bool eight_bytes) {
  nvme::Sqe s = fabrics_sqe(PROPERTY_GET);
  s.cdw10 = eight_bytes ? 1 : 0;  // ATTRIB.SIZE
  s.cdw11 = offset;
  return s;
}

nvme::Sqe property_set(uint32_t offset, uint64_t value, bool eight_bytes) {
  nvme::Sqe s = fabrics_sqe(PROPERTY_SET);
  s.cdw10 = eight_bytes ? 1 : 0;
  s.cdw11 = offset;
  s.cdw12 = uint32_t(value);
  s.cdw13 = uint32_t(value >> 32);
  return s;
}

ConnectData connect_data(const std::array<uint8_t, 16>& hostid, uint16_t cntlid, const std::string& subnqn,
                         const std::string& hostnqn) {
  if (subnqn.empty() || subnqn.size() > 223) throw Error(Errc::invalid_argument, "NVMe/TCP: bad subsystem NQN '" + subnqn + "' (1..223 bytes)");
  if (hostnqn.empty() || hostnqn.size() > 223) throw Error(Errc::invalid_argument, "NVMe/TCP: bad host NQN '" + hostnqn + "' (1..223 bytes)");
  ConnectData d{};
  std::memcpy(d.hostid, hostid.data(), 16);
  d.cntlid = cntlid;
  std::memcpy(d.subnqn, subnqn.data(), subnqn.size());
  std::memcpy(d.hostnqn, hostnqn.data(), hostnqn.size());
  return d;
}
}  // namespace fabrics

std::string Address::describe() const {
  const bool v6 = host.find(':') != std::string::npos;
  return fmt::format("tcp://{}{}{}:{}/{}", v6 ? "[" : "", host, v6 ? "]" : "", port, subnqn);
}

Address parse_address(const std::string& url) {
  const std::string usage = "'" + url + "': use tcp://HOST[:PORT]/SUBNQN";
  if (url.rfind("tcp://", 0) != 0) throw Error(Errc::invalid_argument, usage);
  std::string rest = url.substr(6);
  const size_t slash = rest.find('/');
  if (slash == std::string::npos || slash + 1 == rest.size())
    throw Error(Errc::invalid_argument, usage + " (the subsystem NQN is missing)");
  Address a;
  a.subnqn = rest.substr(slash + 1);
  if (const size_t q = a.subnqn.find('?'); q != std::string::npos) {
    const std::string query = a.subnqn.substr(q + 1);
    a.subnqn.resize(q);
    const std::string key = "ctrl_loss_tmo=";
    char* end = nullptr;
    const long v = query.rfind(key, 0) == 0 ? std::strtol(query.c_str() + key.size(), &end, 10) : -1;
    if (v < 0 || v > 86400 || !end || *end)
      throw Error(Errc::invalid_argument, usage + " (unknown option '" + query + "': only ctrl_loss_tmo=SECONDS)");
    a.ctrl_loss_tmo_s = int(v);
  }
  if (a.subnqn.empty()) throw Error(Errc::invalid_argument, usage + " (the subsystem NQN is missing)");
  std::string hp = rest.substr(0, slash);
  std::string port;
  if (!hp.empty() && hp[0] == '[') {
    const size_t close = hp.find(']');
    if (close == std::string::npos) throw Error(Errc::invalid_argument, usage + " (unclosed '[')");
    a.host = hp.substr(1, close - 1);
    if (close + 1 < hp.size()) {
      if (hp[close + 1] != ':') throw Error(Errc::invalid_argument, usage);
      port = hp.substr(close + 2);
    }
  } else {
    const size_t colon = hp.find(':');
    a.host = hp.substr(0, colon);
    if (colon != std::string::npos) port = hp.substr(colon + 1);
  }
  if (a.host.empty()) throw Error(Errc::invalid_argument, usage + " (the host is missing)");
  if (!port.empty()) {
    char* end = nullptr;
    unsigned long p = std::strtoul(port.c_str(), &end, 10);
    if (*end || p == 0 || p > 65535) throw Error(Errc::invalid_argument, usage + " (bad port '" + port + "')");
    a.port = uint16_t(p);
  }
  return a;
}

namespace {
std::string first_line(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  if (f) std::getline(f, s);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r' || s.back() == '\t')) s.pop_back();
  return s;
}
bool parse_uuid(const std::string& s, std::array<uint8_t, 16>& out) {
  std::string hex;
  for (char c : s)
    if (c != '-') hex += c;
  if (hex.size() != 32) return false;
  for (size_t i = 0; i < 16; ++i) {
    char* end = nullptr;
    std::string b = hex.substr(2 * i, 2);
    out[i] = uint8_t(std::strtoul(b.c_str(), &end, 16));
    if (*end) return false;
  }
  return true;
}
}  // namespace

HostIdentity host_identity(const std::string& etc_nvme) {
  HostIdentity h;
  h.nqn = first_line(etc_nvme + "/hostnqn");
  const bool have_id = parse_uuid(first_line(etc_nvme + "/hostid"), h.id);
  std::array<uint8_t, 16> uuid{};
  const size_t at = h.nqn.find(":uuid:");
  const bool nqn_uuid = at != std::string::npos && parse_uuid(h.nqn.substr(at + 6), uuid);
  if (!have_id && nqn_uuid) {
    h.id = uuid;
  } else if (!have_id) {
    std::random_device rd;
    for (auto& b : h.id) b = uint8_t(rd());
    h.id[6] = uint8_t((h.id[6] & 0x0F) | 0x40), h.id[8] = uint8_t((h.id[8] & 0x3F) | 0x80);  // UUID v4
  }
  if (h.nqn.empty()) {
    const auto& u = h.id;
    h.nqn = fmt::format(
        "nqn.2014-08.org.nvmexpress:uuid:{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-"
        "{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
  }
  return h;
}

}  // namespace aisio::tcp
