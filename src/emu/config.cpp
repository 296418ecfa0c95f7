#include "emu/config.hpp"

#include <string>

#include "common/error.hpp"

namespace aisio::emu {

namespace {
[[noreturn]] void bad(const std::string& what) { throw Error(Errc::invalid_argument, "emu config: " + what); }
}  // namespace

void EmuConfig::validate() const {
  if (mqes < 1) bad("mqes must be at least 1 (queues need 2 entries)");
  if (dstrd > 10) bad("dstrd must be at most 10 (4 KiB doorbell stride)");
  if (mpsmax > 15) bad("mpsmax must be at most 15");
  if (mdts > 20) bad("mdts must be at most 20 (4 GiB)");
  if (max_io_queues < 1 || max_io_queues > 4096) bad("max_io_queues must be in 1..4096");
  if (workers < 1 || workers > 64) bad("workers must be in 1..64");
  if (namespaces.empty() || namespaces.size() > 1024) bad("need 1..1024 namespaces");
  if (serial.size() > 20) bad("serial is at most 20 characters");
  if (model.size() > 40) bad("model is at most 40 characters");
  if (firmware.size() > 8) bad("firmware is at most 8 characters");
  if (idle.sleep_min_us == 0 || idle.sleep_max_us < idle.sleep_min_us) bad("idle sleep range invalid");
  if (device_model.iops < 0 || device_model.bandwidth < 0) bad("device model rates must be >= 0");
  if (secondaries.count > 127) bad("secondaries.count must be at most 127");
  if (secondaries.count) {
    const auto& v = secondaries;
    if (!v.vq_flexible || !v.vi_flexible) bad("secondary controllers need VQ and VI flexible resources");
    if (v.vq_max > v.vq_flexible || v.vi_max > v.vi_flexible) bad("secondaries: per-secondary maximum above the total");
    if (!v.vq_granularity || !v.vi_granularity) bad("secondaries: granularity must be at least 1");
  }
  for (size_t i = 0; i < namespaces.size(); ++i) {
    const auto& n = namespaces[i];
    std::string id = "namespace " + std::to_string(i + 1) + ": ";
    if (n.lba_size != 512 && n.lba_size != 4096) bad(id + "LBA size must be 512 or 4096");
    if (n.size_bytes < n.lba_size) bad(id + "size is smaller than one LBA");
    if (n.backing == Backing::file && n.path.empty()) bad(id + "file backing needs a path");
  }
}

bool parse_backing(std::string_view text, NamespaceConfig& ns) {
  if (text == "ram") ns.backing = Backing::ram;
  else if (text == "null") ns.backing = Backing::null;
  else if (text.starts_with("file:") && text.size() > 5) {
    ns.backing = Backing::file;
    ns.path = std::string(text.substr(5));
  } else {
    return false;
  }
  return true;
}

}  // namespace aisio::emu
