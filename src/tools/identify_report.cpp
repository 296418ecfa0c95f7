#include "tools/identify_report.hpp"

#include <fmt/format.h>

namespace aisio::tools {

using nlohmann::ordered_json;
using namespace aisio::nvme;

namespace {
std::string hex(uint64_t v) { return fmt::format("{:#x}", v); }

ordered_json ns_json(const Namespace& ns) {
  const IdentifyNamespace& id = *ns.id;
  ordered_json lbafs = ordered_json::array();
  for (uint32_t i = 0; i <= id.nlbaf && i < 64; ++i)
    lbafs.push_back({{"index", i},
                     {"ms", id.lbaf[i].ms},
                     {"lbads", id.lbaf[i].lbads},
                     {"rp", id.lbaf[i].rp},
                     {"in_use", i == flbas_index(id.flbas)}});
  return {{"nsid", ns.nsid},     {"nsze", id.nsze},   {"ncap", id.ncap},    {"nuse", id.nuse},
          {"nsfeat", id.nsfeat}, {"nlbaf", id.nlbaf}, {"flbas", id.flbas},  {"lba_size", ns.lba_size},
          {"bytes", ns.bytes()}, {"lbaf", lbafs}};
}
}  // namespace

IdentifyView identify_view(const Controller& c) {
  return {c.describe(), c.cap(), c.version(), &c.id(), c.mdts_bytes(), c.io_queue_limit(), &c.namespaces(), "pcie"};
}
IdentifyView identify_view(const tcp::Controller& c) {
  return {c.describe(), c.cap(), c.version(), &c.id(), c.mdts_bytes(), c.io_queue_limit(), &c.namespaces(), "tcp"};
}

ordered_json identify_json(const IdentifyView& c) {
  const IdentifyController& id = *c.id;
  ordered_json ctrl = {
      {"handle", c.handle},
      {"transport", c.transport},
      {"cap", hex(c.cap.raw)},
      {"mqes", c.cap.mqes()},
      {"dstrd", c.cap.dstrd()},
      {"to_ms", c.cap.to() * 500},
      {"mpsmin", c.cap.mpsmin()},
      {"mpsmax", c.cap.mpsmax()},
      {"version", fmt::format("{}.{}.{}", c.version.major(), c.version.minor(), c.version.tertiary())},
      {"vid", hex(id.vid)},
      {"ssvid", hex(id.ssvid)},
      {"sn", trim_id_string(id.sn, sizeof id.sn)},
      {"mn", trim_id_string(id.mn, sizeof id.mn)},
      {"fr", trim_id_string(id.fr, sizeof id.fr)},
      {"mdts", id.mdts},
      {"mdts_bytes", c.mdts_bytes},
      {"cntlid", id.cntlid},
      {"ver", hex(id.ver)},
      {"oacs", hex(id.oacs)},
      {"elpe", id.elpe},
      {"sqes", hex(id.sqes)},
      {"cqes", hex(id.cqes)},
      {"nn", id.nn},
      {"oncs", hex(id.oncs)},
      {"vwc", hex(id.vwc)},
      {"sgls", hex(id.sgls)},
      {"subnqn", trim_id_string(id.subnqn, sizeof id.subnqn)},
      {"io_queue_pairs", c.io_queue_pairs},
  };
  ordered_json nss = ordered_json::array();
  for (auto& ns : *c.namespaces) nss.push_back(ns_json(ns));
  return {{"controller", ctrl}, {"namespaces", nss}};
}

std::string identify_text(const IdentifyView& c) {
  ordered_json j = identify_json(c);
  std::string out = "NVMe Identify Controller:\n";
  for (auto& [k, v] : j["controller"].items())
    out += fmt::format("{:<15}: {}\n", k, v.is_string() ? v.get<std::string>() : v.dump());
  for (auto& ns : j["namespaces"]) {
    out += fmt::format("\nNVMe Identify Namespace {}:\n", ns["nsid"].get<uint32_t>());
    for (auto& [k, v] : ns.items()) {
      if (k == "lbaf") continue;
      out += fmt::format("{:<15}: {}\n", k, v.dump());
    }
    for (auto& f : ns["lbaf"])
      out += fmt::format("lbaf {:>2}        : ms:{:<3} lbads:{:<3} rp:{}{}\n", f["index"].get<int>(),
                         f["ms"].get<int>(), f["lbads"].get<int>(), f["rp"].get<int>(),
                         f["in_use"].get<bool>() ? " (in use)" : "");
  }
  return out;
}

}  // namespace aisio::tools
