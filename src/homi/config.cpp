// TOML parsing with toml++ used header-only (Debian ships it as a shared library,
// which the static guest build cannot link).
#define TOML_HEADER_ONLY 1
#undef TOML_SHARED_LIB
#include <toml++/toml.h>

#include "homi/config.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include "common/error.hpp"
#include "homi/log.hpp"
#include "common/units.hpp"

namespace aisio::homi {

namespace {

// The id of account `name` in /etc/passwd or /etc/group (read directly, no NSS, so
// static builds work too).
std::optional<uint32_t> account_id(const std::string& name, const std::string& file) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    // name:x:id:...
    size_t a = line.find(':');
    if (a == std::string::npos || line.compare(0, a, name) != 0 || a != name.size()) continue;
    size_t b = line.find(':', a + 1);
    if (b == std::string::npos) continue;
    size_t c = std::min(line.find(':', b + 1), line.size());
    uint32_t id = 0;
    auto [end, ec] = std::from_chars(line.data() + b + 1, line.data() + c, id);
    return ec == std::errc() && end == line.data() + c ? std::optional(id) : std::nullopt;
  }
  return std::nullopt;
}

struct Ctx {
  std::string source;
  [[noreturn]] void fail(const toml::node* n, const std::string& what) const {
    std::string where = source;
    if (n && n->source().begin.line) where += ":" + std::to_string(n->source().begin.line);
    throw Error(Errc::invalid_argument, where + ": " + what);
  }
  void only_keys(const toml::table& t, const std::string& section, std::initializer_list<std::string_view> keys) const {
    for (auto& [k, v] : t)
      if (std::ranges::find(keys, k.str()) == keys.end())
        fail(&v, "unknown key '" + std::string(k.str()) + "' in " + section);
  }
  std::optional<std::string> str(const toml::table& t, std::string_view key) const {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    if (auto v = n->value<std::string>()) return *v;
    fail(n, "'" + std::string(key) + "' must be a string");
  }
  std::optional<int64_t> integer(const toml::table& t, std::string_view key, int64_t lo, int64_t hi) const {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    auto v = n->value<int64_t>();
    if (!v || !n->is_integer()) fail(n, "'" + std::string(key) + "' must be an integer");
    if (*v < lo || *v > hi)
      fail(n, "'" + std::string(key) + "' = " + std::to_string(*v) + " is outside " + std::to_string(lo) + ".." +
                  std::to_string(hi));
    return *v;
  }
  std::optional<bool> boolean(const toml::table& t, std::string_view key) const {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    if (!n->is_boolean()) fail(n, "'" + std::string(key) + "' must be true or false");
    return n->value<bool>();
  }
  // "1G", "512M" or a plain integer of bytes.
  std::optional<uint64_t> size(const toml::table& t, std::string_view key) const {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    if (n->is_integer()) {
      int64_t v = *n->value<int64_t>();
      if (v < 0) fail(n, "'" + std::string(key) + "' must not be negative");
      return uint64_t(v);
    }
    if (auto s = n->value<std::string>()) {
      try {
        return parse_size(*s);
      } catch (const Error& e) {
        fail(n, e.what());
      }
    }
    fail(n, "'" + std::string(key) + "' must be a size like \"4G\" or a number of bytes");
  }
  std::vector<std::string> strings(const toml::table& t, std::string_view key) const {
    std::vector<std::string> out;
    const toml::node* n = t.get(key);
    if (!n) return out;
    const toml::array* a = n->as_array();
    if (!a) fail(n, "'" + std::string(key) + "' must be an array of strings");
    for (auto& e : *a) {
      auto v = e.value<std::string>();
      if (!v) fail(&e, "'" + std::string(key) + "' must hold strings");
      out.push_back(*v);
    }
    return out;
  }
  // A numeric id or an account name. Errors: `wrong_type` when it is neither, "<who>
  // 'name' not found in /etc/..." for an unknown name.
  uint32_t id(const toml::node& e, bool groups, const std::string& who, const std::string& wrong_type) const {
    if (e.is_integer()) {
      int64_t v = *e.value<int64_t>();
      if (v < 0 || v > UINT32_MAX) fail(&e, "id out of range");
      return uint32_t(v);
    }
    auto s = e.value<std::string>();
    if (!s) fail(&e, wrong_type);
    const std::string file = groups ? "/etc/group" : "/etc/passwd";
    auto id = account_id(*s, file);
    if (!id) fail(&e, who + " '" + *s + "' not found in " + file);
    return *id;
  }
  std::vector<uint32_t> ids(const toml::table& t, std::string_view key, bool groups) const {
    std::vector<uint32_t> out;
    const toml::node* n = t.get(key);
    if (!n) return out;
    const toml::array* a = n->as_array();
    if (!a) fail(n, "'" + std::string(key) + "' must be an array of ids or names");
    const std::string who = groups ? "group" : "user";
    const std::string wrong_type = std::string("'").append(key).append("' must hold numbers or names");
    for (auto& e : *a) out.push_back(id(e, groups, who, wrong_type));
    return out;
  }
};

// "0660" -> 0660; false unless the whole string is octal digits that fit.
bool octal(const std::string& s, uint32_t& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 8);
  return ec == std::errc() && end == s.data() + s.size();
}

const toml::table& table_of(const Ctx& c, const toml::node& n, const std::string& what) {
  const toml::table* t = n.as_table();
  if (!t) c.fail(&n, what + " must be a table");
  return *t;
}

// Each table of the array of tables `key` (none when absent); `what` names it in errors.
template <class F>
void each_table(const Ctx& c, const toml::table& t, std::string_view key, const std::string& what, F&& each) {
  const toml::node* n = t.get(key);
  if (!n) return;
  const toml::array* a = n->as_array();
  if (!a) c.fail(n, std::string(key) + " must be an array of tables (" + what + ")");
  for (auto& e : *a) each(table_of(c, e, what), e);
}

void parse_namespace(const Ctx& c, const toml::table& t, ControllerConfig& cc, uint32_t index) {
  bool soft = cc.kind == ControllerConfig::Kind::soft;
  std::string sect = "[[controller.namespace]] of '" + cc.name + "'";
  if (soft)
    c.only_keys(t, sect, {"nsid", "size", "lba_size", "backing", "block_device", "image", "ublk", "ublk_id",
                          "ublk_queues", "ublk_depth", "ublk_max_io_kib"});
  else
    c.only_keys(t, sect, {"nsid", "block_device", "image", "ublk", "ublk_id", "ublk_queues", "ublk_depth",
                          "ublk_max_io_kib"});
  NamespaceBacking b;
  b.nsid = uint32_t(c.integer(t, "nsid", 1, 1024).value_or(index + 1));
  if (soft && b.nsid != index + 1) c.fail(t.get("nsid"), "software controller namespaces are numbered 1, 2, ... in order");
  b.block_device = c.str(t, "block_device").value_or("");
  b.image = c.str(t, "image").value_or("");
  if (!b.block_device.empty() && !b.image.empty()) c.fail(&t, sect + ": give block_device or image, not both");
  b.ublk.enabled = c.boolean(t, "ublk").value_or(false);
  b.ublk.dev_id = c.integer(t, "ublk_id", 0, 1 << 20).value_or(-1);
  b.ublk.queues = uint16_t(c.integer(t, "ublk_queues", 1, 64).value_or(1));
  b.ublk.depth = uint16_t(c.integer(t, "ublk_depth", 1, 4096).value_or(64));
  b.ublk.max_io_kib = uint32_t(c.integer(t, "ublk_max_io_kib", 4, 4096).value_or(512));
  if (soft) {
    emu::NamespaceConfig ns;
    ns.size_bytes = c.size(t, "size").value_or(ns.size_bytes);
    ns.lba_size = uint32_t(c.integer(t, "lba_size", 512, 4096).value_or(512));
    if (!emu::parse_backing(c.str(t, "backing").value_or("ram"), ns))
      c.fail(t.get("backing"), "backing must be \"ram\", \"null\" or \"file:PATH\"");
    if (ns.backing == emu::Backing::file && b.image.empty() && b.block_device.empty())
      b.image = ns.path;  // the file is the image
    cc.soft.namespaces.push_back(ns);
  }
  for (auto& o : cc.backings)
    if (o.nsid == b.nsid) c.fail(&t, sect + ": namespace " + std::to_string(b.nsid) + " listed twice");
  cc.backings.push_back(b);
}

// type = "sriov-pf": address (the PF), admin_device, driver, vfs = [{ vq = 2, vi = 1 }, ...].
void parse_sriov_pf(const Ctx& c, const toml::table& t, ControllerConfig& cc) {
  std::string sect = "[[controller]] '" + cc.name + "'";
  cc.kind = ControllerConfig::Kind::sriov_pf;
  c.only_keys(t, sect, {"name", "type", "address", "admin_device", "driver", "vfs", "namespace"});
  cc.address = cc.sriov.address = c.str(t, "address").value_or("");
  if (cc.address.empty()) c.fail(&t, sect + ": type \"sriov-pf\" needs address = \"DDDD:BB:DD.F\" (the PF)");
  cc.sriov.admin_device = c.str(t, "admin_device").value_or("");
  std::string drv = c.str(t, "driver").value_or("auto");
  if (drv == "uio") cc.sriov.driver = pcie::Driver::uio_pci_generic;
  else if (drv == "vfio") cc.sriov.driver = pcie::Driver::vfio_pci;
  else if (drv != "auto") c.fail(t.get("driver"), sect + ": driver must be \"auto\", \"uio\" or \"vfio\"");
  const toml::node* n = t.get("vfs");
  const toml::array* a = n ? n->as_array() : nullptr;
  if (!a || a->empty()) c.fail(n ? n : &t, sect + ": needs vfs = [{ vq = 2, vi = 1 }, ...], one table per VF");
  for (auto& e : *a) {
    const toml::table& v = table_of(c, e, sect + " vfs entry");
    c.only_keys(v, sect + " vfs entry", {"vq", "vi"});
    VfResources r;
    r.vq = uint16_t(c.integer(v, "vq", 0, 65535).value_or(r.vq));
    r.vi = uint16_t(c.integer(v, "vi", 0, 65535).value_or(r.vi));
    cc.sriov.vfs.push_back(r);
  }
}

ControllerConfig parse_controller(const Ctx& c, const toml::table& t) {
  ControllerConfig cc;
  cc.name = c.str(t, "name").value_or("");
  if (cc.name.empty() || cc.name.size() > 64) c.fail(&t, "[[controller]] needs a name of 1-64 characters");
  std::string type = c.str(t, "type").value_or("");
  if (type == "soft") {
    cc.kind = ControllerConfig::Kind::soft;
    c.only_keys(t, "[[controller]] '" + cc.name + "'",
                {"name", "type", "max_io_queues", "mqes", "mdts", "workers", "serial", "model", "sgl", "namespace"});
    cc.soft.namespaces.clear();
    cc.soft.max_io_queues = uint16_t(c.integer(t, "max_io_queues", 1, 4096).value_or(64));
    cc.soft.mqes = uint16_t(c.integer(t, "mqes", 1, 65535).value_or(cc.soft.mqes));
    cc.soft.mdts = uint8_t(c.integer(t, "mdts", 0, 20).value_or(cc.soft.mdts));
    cc.soft.workers = unsigned(c.integer(t, "workers", 1, 64).value_or(1));
    cc.soft.sgl = c.boolean(t, "sgl").value_or(false);
    if (auto s = c.str(t, "serial")) cc.soft.serial = *s;
    if (auto s = c.str(t, "model")) cc.soft.model = *s;
    cc.soft.dstrd = 10;  // 4 KiB doorbell stride: each queue's doorbells on pages of their own
    cc.io_queues = cc.soft.max_io_queues;
  } else if (type == "pci") {
    cc.kind = ControllerConfig::Kind::pci;
    c.only_keys(t, "[[controller]] '" + cc.name + "'", {"name", "type", "address", "bind", "io_queues", "namespace"});
    cc.address = c.str(t, "address").value_or("");
    if (cc.address.empty()) c.fail(&t, "[[controller]] '" + cc.name + "': type \"pci\" needs address = \"DDDD:BB:DD.F\"");
    cc.bind = c.boolean(t, "bind").value_or(false);
    cc.io_queues = uint16_t(c.integer(t, "io_queues", 1, 65535).value_or(64));
  } else if (type == "sriov-pf") {
    parse_sriov_pf(c, t, cc);
  } else {
    c.fail(&t, "[[controller]] '" + cc.name + "': type must be \"soft\", \"pci\" or \"sriov-pf\"");
  }
  uint32_t i = 0;
  each_table(c, t, "namespace", "[[controller.namespace]]",
             [&](const toml::table& ns, const toml::node&) { parse_namespace(c, ns, cc, i++); });
  uint32_t kernel_queues = 0;  // I/O queue pairs the ublk exports reserve
  for (auto& b : cc.backings) kernel_queues += b.ublk.enabled ? b.ublk.queues : 0;
  if (kernel_queues && kernel_queues >= cc.io_queues) {
    std::string key = cc.kind == ControllerConfig::Kind::soft ? "max_io_queues" : "io_queues";
    c.fail(&t, "[[controller]] '" + cc.name + "': its ublk exports need " + std::to_string(kernel_queues) +
                   " I/O queue pair(s) for the kernel path and " + key + " = " + std::to_string(cc.io_queues) +
                   (kernel_queues > cc.io_queues ? " leaves no queue for the kernel path" : " leaves none for clients") +
                   ": raise " + key + " or lower ublk_queues");
  }
  if (cc.kind == ControllerConfig::Kind::soft) {
    if (cc.soft.namespaces.empty()) {
      cc.soft.namespaces.push_back(emu::NamespaceConfig{});
      cc.backings.push_back(NamespaceBacking{1, "", ""});
    }
    try {
      cc.soft.validate();
    } catch (const Error& e) {
      c.fail(&t, "[[controller]] '" + cc.name + "': " + e.what());
    }
  }
  return cc;
}

AccessRule parse_rule(const Ctx& c, const toml::table& t, size_t index) {
  c.only_keys(t, "[[allow]]",
              {"name", "any", "uids", "gids", "controllers", "dataset_roots", "max_queues", "max_dma_bytes",
               "external_queue_memory", "admin"});
  AccessRule r;
  r.name = c.str(t, "name").value_or("rule" + std::to_string(index + 1));
  r.any = c.boolean(t, "any").value_or(false);
  r.uids = c.ids(t, "uids", false);
  r.gids = c.ids(t, "gids", true);
  if (!r.any && r.uids.empty() && r.gids.empty())
    c.fail(&t, "[[allow]] '" + r.name + "' admits nobody: give uids, gids or any = true");
  r.controllers = c.strings(t, "controllers");
  r.dataset_roots = c.strings(t, "dataset_roots");
  for (auto& root : r.dataset_roots) {
    if (root.empty() || root[0] != '/') c.fail(t.get("dataset_roots"), "dataset root '" + root + "' must be absolute");
    while (root.size() > 1 && root.back() == '/') root.pop_back();
  }
  r.max_queues = uint32_t(c.integer(t, "max_queues", 0, 65535).value_or(0));
  r.max_dma_bytes = c.size(t, "max_dma_bytes").value_or(0);
  r.external_queue_memory = c.boolean(t, "external_queue_memory").value_or(false);
  r.admin = c.boolean(t, "admin").value_or(false);
  return r;
}

}  // namespace

bool AccessRule::allows_controller(std::string_view n) const {
  return controllers.empty() || std::ranges::find(controllers, n) != controllers.end();
}

bool AccessRule::allows_path(std::string_view path) const {
  for (auto& root : dataset_roots) {
    if (root == "/") return true;
    if (path.size() >= root.size() && path.substr(0, root.size()) == root &&
        (path.size() == root.size() || path[root.size()] == '/'))
      return true;
  }
  return false;
}

const AccessRule* Policy::match(uint32_t uid, uint32_t gid, const std::vector<uint32_t>& groups) const {
  auto has = [](const std::vector<uint32_t>& ids, uint32_t id) { return std::ranges::find(ids, id) != ids.end(); };
  for (auto& r : rules)
    if (r.any || has(r.uids, uid) || has(r.gids, gid) ||
        std::ranges::any_of(groups, [&](uint32_t g) { return has(r.gids, g); }))
      return &r;
  return nullptr;
}

DaemonConfig parse_config(std::string_view text, const std::string& source) {
  Ctx c{source};
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw Error(Errc::invalid_argument, source + ":" + std::to_string(e.source().begin.line) + ": " +
                                            std::string(e.description()));
  }
  c.only_keys(root, "the file", {"daemon", "limits", "controller", "allow"});
  DaemonConfig cfg;
  cfg.source = source;
  if (const toml::node* n = root.get("daemon")) {
    const toml::table& d = table_of(c, *n, "[daemon]");
    c.only_keys(d, "[daemon]", {"socket", "socket_mode", "socket_group", "log_level"});
    cfg.socket = c.str(d, "socket").value_or(cfg.socket);
    if (cfg.socket.empty() || cfg.socket.size() >= 108) c.fail(d.get("socket"), "socket path must be 1-107 characters");
    if (const toml::node* m = d.get("socket_mode")) {
      auto s = m->value<std::string>();
      if (m->is_integer()) cfg.socket_mode = uint32_t(*m->value<int64_t>());
      else if (!s || !octal(*s, cfg.socket_mode)) c.fail(m, "socket_mode must be an octal string like \"0660\"");
      if (cfg.socket_mode > 0777) c.fail(m, "socket_mode must be at most 0777");
    }
    if (const toml::node* g = d.get("socket_group"))
      cfg.socket_group = c.id(*g, true, "socket_group", "socket_group must be a group name or gid");
    cfg.policy.log_level = c.str(d, "log_level").value_or("info");
    try {
      parse_level(cfg.policy.log_level);
    } catch (const Error& e) {
      c.fail(d.get("log_level"), e.what());
    }
  }
  if (const toml::node* n = root.get("limits")) {
    const toml::table& l = table_of(c, *n, "[limits]");
    c.only_keys(l, "[limits]",
                {"max_clients", "max_queues_total", "max_queues_per_client", "max_dma_bytes_per_client",
                 "max_regions_per_client", "max_queue_depth"});
    Limits& L = cfg.policy.limits;
    L.max_clients = uint32_t(c.integer(l, "max_clients", 1, 65536).value_or(L.max_clients));
    L.max_queues_total = uint32_t(c.integer(l, "max_queues_total", 0, 1 << 20).value_or(L.max_queues_total));
    L.max_queues_per_client = uint32_t(c.integer(l, "max_queues_per_client", 0, 65535).value_or(L.max_queues_per_client));
    L.max_dma_bytes_per_client = c.size(l, "max_dma_bytes_per_client").value_or(L.max_dma_bytes_per_client);
    L.max_regions_per_client = uint32_t(c.integer(l, "max_regions_per_client", 1, 200).value_or(L.max_regions_per_client));
    L.max_queue_depth = uint32_t(c.integer(l, "max_queue_depth", 2, 65536).value_or(L.max_queue_depth));
  }
  std::set<std::string> names;
  each_table(c, root, "controller", "[[controller]]", [&](const toml::table& t, const toml::node& e) {
    ControllerConfig cc = parse_controller(c, t);
    if (!names.insert(cc.name).second) c.fail(&e, "two controllers named '" + cc.name + "'");
    (cc.kind == ControllerConfig::Kind::sriov_pf ? cfg.sriov_pfs : cfg.controllers).push_back(std::move(cc));
  });
  if (cfg.controllers.empty() && cfg.sriov_pfs.empty()) throw Error(Errc::invalid_argument, source + ": no [[controller]] configured");
  each_table(c, root, "allow", "[[allow]]", [&](const toml::table& t, const toml::node& e) {
    AccessRule r = parse_rule(c, t, cfg.policy.rules.size());
    for (auto& name : r.controllers)
      if (!names.count(name))
        c.fail(&e, "[[allow]] '" + r.name + "' names controller '" + name + "', which is not configured");
    cfg.policy.rules.push_back(std::move(r));
  });
  return cfg;
}

DaemonConfig load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(Errc::invalid_argument, "cannot read config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

}  // namespace aisio::homi
