// aisio homi status|queues|clients [--socket PATH] [--json]: what homid is doing.
// The socket defaults to $HOMID_SOCKET, else /run/homid/homid.sock. `clients` and
// `queues` list every client when the caller's policy rule has admin = true, else
// only the caller's own connection.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "homi/client.hpp"
#include "homi/function_client.hpp"
#include "tools/command.hpp"
#include "common/units.hpp"

namespace aisio::tools {
namespace {

namespace wire = homi::wire;

const char* kind_name(uint8_t k) {
  switch (wire::Kind(k)) {
    case wire::Kind::soft: return "soft";
    case wire::Kind::pci_uio: return "pci/uio";
    case wire::Kind::pci_vfio: return "pci/vfio";
  }
  return "?";
}

std::string duration(uint64_t ms) {
  uint64_t s = ms / 1000;
  if (s < 120) return fmt::format("{}.{}s", s, (ms % 1000) / 100);
  if (s < 7200) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s / 60) % 60);
}

struct Opts {
  std::string socket = homic::default_socket();
  bool json = false;
};

// Queues granted with a GPU index, per GPU: {gpu: queues}; of one client, or of all.
std::map<uint32_t, uint32_t> gpu_queues(const wire::StatsOk& st, std::optional<uint64_t> client = {}) {
  std::map<uint32_t, uint32_t> m;
  for (auto& q : st.queues)
    if ((!client || q.client == *client) && (q.flags & wire::kAllocGpu)) ++m[q.gpu];
  return m;
}
std::string gpu_queues_text(const std::map<uint32_t, uint32_t>& m) {
  std::string s;
  for (auto [g, n] : m) s += fmt::format("{}GPU {}: {}", s.empty() ? "" : ", ", g, n);
  return s;
}
nlohmann::json gpu_queues_json(const std::map<uint32_t, uint32_t>& m) {
  nlohmann::json j = nlohmann::json::object();
  for (auto [g, n] : m) j[std::to_string(g)] = n;
  return j;
}

void status(homic::Client& c, const Opts& o) {
  auto st = c.stats(true);
  auto ctrls = c.controllers();
  if (o.json) {
    nlohmann::json j;
    j["socket"] = o.socket;
    j["daemon"] = c.hello().daemon;
    j["instance"] = fmt::format("{:016x}", st.instance);
    j["uptime_ms"] = st.uptime_ms;
    j["queues"] = st.queues_total;
    j["max_queues_total"] = st.max_queues_total;
    j["connections_accepted"] = st.clients_total;
    j["reclaimed_queues"] = st.reclaimed_queues;
    j["gpu_queues"] = gpu_queues_json(gpu_queues(st));
    j["controllers"] = nlohmann::json::array();
    for (auto& ci : ctrls) {
      nlohmann::json x{{"index", ci.index},       {"name", ci.name},
                       {"address", ci.address},   {"model", ci.model},
                       {"serial", ci.serial},     {"kind", kind_name(ci.kind)},
                       {"dstrd", ci.dstrd},       {"doorbells_isolated", bool(ci.flags & wire::kCtrlDoorbellsIsolated)},
                       {"fatal", bool(ci.flags & wire::kCtrlFatal)},
                       {"queues_in_use", ci.queues_in_use}, {"queue_limit", ci.queue_limit},
                       {"max_queue_depth", ci.max_queue_depth}, {"max_transfer", ci.max_transfer}};
      x["namespaces"] = nlohmann::json::array();
      for (auto& n : ci.namespaces)
        x["namespaces"].push_back({{"nsid", n.nsid}, {"lba_size", n.lba_size}, {"blocks", n.nsze},
                                   {"extents_backing", bool(n.has_backing)}});
      for (auto& cs : st.controllers)
        if (cs.index == ci.index && cs.known)
          x["commands"] = {{"admin", cs.admin_commands}, {"io", cs.io_commands}, {"bytes_read", cs.bytes_read},
                           {"bytes_written", cs.bytes_written}, {"errors", cs.errors}};
      j["controllers"].push_back(x);
    }
    j["ublk"] = nlohmann::json::array();
    for (auto& u : st.ublk)
      j["ublk"].push_back({{"path", u.path}, {"controller", u.ctrl}, {"nsid", u.nsid}, {"queues", u.queues},
                           {"nvme_qids", u.qids}, {"depth", u.depth}, {"max_io_bytes", u.max_io_bytes},
                           {"recovered", bool(u.recovered)}, {"reads", u.reads}, {"writes", u.writes},
                           {"flushes", u.flushes}, {"discards", u.discards}, {"write_zeroes", u.write_zeroes},
                           {"errors", u.errors}, {"bytes_read", u.bytes_read}, {"bytes_written", u.bytes_written}});
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("{} on {} (instance {:016x}), up {}\n", c.hello().daemon, o.socket, st.instance, duration(st.uptime_ms));
  fmt::print("queues granted: {} of {}; connections since start: {}; queues reclaimed from dead clients: {}\n",
             st.queues_total, st.max_queues_total, st.clients_total, st.reclaimed_queues);
  if (auto g = gpu_queues(st); !g.empty()) fmt::print("queues per GPU: {}\n", gpu_queues_text(g));
  fmt::print("\n{:<3} {:<12} {:<9} {:<32} {:>7} {:>6} {:>12} {:>10} {:>10}\n", "#", "controller", "kind", "address",
             "queues", "DSTRD", "I/O cmds", "read", "written");
  for (auto& ci : ctrls) {
    std::string io = "-", rd = "-", wr = "-";
    for (auto& cs : st.controllers)
      if (cs.index == ci.index && cs.known) {
        io = std::to_string(cs.io_commands);
        rd = format_size(cs.bytes_read);
        wr = format_size(cs.bytes_written);
      }
    fmt::print("{:<3} {:<12} {:<9} {:<32} {:>7} {:>6} {:>12} {:>10} {:>10}{}\n", ci.index, ci.name, kind_name(ci.kind),
               ci.address, fmt::format("{}/{}", ci.queues_in_use, ci.queue_limit),
               fmt::format("{}{}", ci.dstrd, ci.flags & wire::kCtrlDoorbellsIsolated ? "" : "*"), io, rd, wr,
               ci.flags & wire::kCtrlFatal ? "  FATAL" : "");
    for (auto& n : ci.namespaces)
      fmt::print("    ns {}: {} x {} B = {}{}\n", n.nsid, n.nsze, n.lba_size, format_size(n.nsze * n.lba_size),
                 n.has_backing ? " (extents backing configured)" : "");
  }
  if (std::ranges::any_of(ctrls, [](auto& ci) { return !(ci.flags & wire::kCtrlDoorbellsIsolated); }))
    fmt::print("* doorbell page shared by all queues of the controller (DSTRD 0: a hardware limit)\n");
  if (!st.ublk.empty()) {
    fmt::print("\nexported to the kernel through ublk:\n");
    for (auto& u : st.ublk)
      fmt::print("  {} = controller {} ns {}: {} queue(s) x {} (NVMe qid {}), {} per request{}\n"
                 "    reads {} ({}), writes {} ({}), flushes {}, discards {}, write zeroes {}, errors {}\n",
                 u.path, u.ctrl, u.nsid, u.queues, u.depth, u.qids, format_size(u.max_io_bytes),
                 u.recovered ? ", recovered from a previous homid" : "", u.reads, format_size(u.bytes_read), u.writes,
                 format_size(u.bytes_written), u.flushes, u.discards, u.write_zeroes, u.errors);
  }
}

void clients(homic::Client& c, const Opts& o) {
  auto st = c.stats(true);
  if (o.json) {
    nlohmann::json j = nlohmann::json::array();
    for (auto& x : st.clients) {
      nlohmann::json per_gpu = gpu_queues_json(gpu_queues(st, x.id));
      j.push_back({{"id", x.id}, {"pid", x.pid}, {"uid", x.uid}, {"gid", x.gid}, {"name", x.name}, {"rule", x.rule},
                   {"queues", x.queues}, {"gpu_queues", per_gpu}, {"regions", x.regions}, {"dma_bytes", x.dma_bytes},
                   {"requests", x.requests}, {"errors", x.errors}, {"connected_ms", x.connected_ms},
                   {"self", x.id == c.hello().client_id}});
    }
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("{:<5} {:>8} {:>6} {:<22} {:<10} {:>6} {:>7} {:>10} {:>8} {:>6} {:>9}\n", "id", "pid", "uid", "name", "rule",
             "queues", "regions", "DMA", "requests", "errors", "connected");
  for (auto& x : st.clients) {
    std::string per_gpu = gpu_queues_text(gpu_queues(st, x.id));
    fmt::print("{:<5} {:>8} {:>6} {:<22} {:<10} {:>6} {:>7} {:>10} {:>8} {:>6} {:>9}{}{}\n", x.id, x.pid, x.uid, x.name,
               x.rule, x.queues, x.regions, format_size(x.dma_bytes), x.requests, x.errors, duration(x.connected_ms),
               per_gpu.empty() ? "" : "  (queues per " + per_gpu + ")",
               x.id == c.hello().client_id ? "  (this command)" : "");
  }
}

void queues(homic::Client& c, const Opts& o) {
  auto st = c.stats(true);
  auto ctrls = c.controllers();
  auto ctrl_name = [&](uint32_t i) -> std::string {
    for (auto& x : ctrls)
      if (x.index == i) return x.name;
    return std::to_string(i);
  };
  auto client_of = [&](uint64_t id) -> const wire::ClientStat* {
    for (auto& x : st.clients)
      if (x.id == id) return &x;
    return nullptr;
  };
  if (o.json) {
    nlohmann::json j = nlohmann::json::array();
    for (auto& q : st.queues) {
      auto* cl = client_of(q.client);
      j.push_back({{"controller", ctrl_name(q.ctrl)}, {"qid", q.qid}, {"depth", q.depth}, {"nsid", q.nsid},
                   {"client", q.client}, {"pid", cl ? cl->pid : 0}, {"client_name", cl ? cl->name : ""},
                   {"external_memory", bool(q.flags & wire::kAllocExternalMemory)},
                   {"gpu", q.flags & wire::kAllocGpu ? nlohmann::json(q.gpu) : nlohmann::json()},
                   {"age_ms", q.age_ms}});
    }
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("{:<12} {:>5} {:>6} {:>5} {:>7} {:>8} {:<22} {:>9}\n", "controller", "qid", "depth", "nsid", "client",
             "pid", "name", "age");
  for (auto& q : st.queues) {
    auto* cl = client_of(q.client);
    fmt::print("{:<12} {:>5} {:>6} {:>5} {:>7} {:>8} {:<22} {:>9}{}{}\n", ctrl_name(q.ctrl), q.qid, q.depth,
               q.nsid ? std::to_string(q.nsid) : "any", q.client, cl ? cl->pid : 0, cl ? cl->name : "",
               duration(q.age_ms), q.flags & wire::kAllocExternalMemory ? "  (external memory)" : "",
               q.flags & wire::kAllocGpu ? fmt::format("  (GPU {})", q.gpu) : "");
  }
  if (st.queues.empty()) fmt::print("(no queues granted)\n");
}

// SR-IOV virtual functions of the sriov-pf controllers: state, holder, resources.
void functions(homic::Client& c, const Opts& o) {
  auto fs = homic::list_functions(c);
  if (o.json) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (auto& f : fs)
      a.push_back({{"pf", f.pf}, {"pf_address", f.pf_address}, {"vfn", f.vfn}, {"address", f.address},
                   {"scid", f.scid}, {"online", bool(f.online)}, {"driver", kind_name(f.driver)}, {"vq", f.vq},
                   {"vi", f.vi}, {"holder", f.holder}, {"grants", f.grants}});
    fmt::print("{}\n", a.dump(2));
    return;
  }
  fmt::print("{:<10} {:>3} {:<13} {:>4} {:<7} {:<8} {:>3} {:>3} {:>7} {:>6}\n", "PF", "VF", "ADDRESS", "SCID",
             "STATE", "DRIVER", "VQ", "VI", "HOLDER", "GRANTS");
  for (auto& f : fs)
    fmt::print("{:<10} {:>3} {:<13} {:>4} {:<7} {:<8} {:>3} {:>3} {:>7} {:>6}\n", f.pf, f.vfn, f.address, f.scid,
               f.online ? "online" : "offline", kind_name(f.driver), f.vq, f.vi,
               f.holder ? std::to_string(f.holder) : std::string("-"), f.grants);
  if (fs.empty()) fmt::print("(no sriov-pf controller configured)\n");
}

CommandRegistrar reg(70, [](CLI::App& app) {
  auto o = std::make_shared<Opts>();
  auto* h = app.add_subcommand("homi", "Ask homid (the HOMI daemon) about its controllers, clients and queues");
  h->require_subcommand(1);
  auto add = [&](const char* name, const char* help, void (*fn)(homic::Client&, const Opts&)) {
    auto* c = h->add_subcommand(name, help);
    c->add_option("--socket", o->socket, "homid socket ($HOMID_SOCKET)")->capture_default_str();
    c->add_flag("--json", o->json, "JSON output");
    c->callback([o, fn] { fn(*homic::Client::connect(o->socket, {.name = "aisio homi"}), *o); });
  };
  add("status", "Daemon, controllers, namespaces and command counters", status);
  add("clients", "Connected clients and their budgets in use", clients);
  add("queues", "Granted I/O queue pairs and who holds them", queues);
  add("functions", "SR-IOV virtual functions: state, holder, flexible resources", functions);
});

}  // namespace
}  // namespace aisio::tools
