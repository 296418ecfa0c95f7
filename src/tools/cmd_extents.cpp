// aisio extents PATH...: a file's extents from FIEMAP, with device byte ranges and
// namespace LBAs (partition offset applied), like `xfs_bmap -v`.
#include <fmt/format.h>
#include <sys/sysmacros.h>

#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "extents/device.hpp"
#include "extents/fiemap.hpp"
#include "extents/translate.hpp"
#include "homi/client.hpp"
#include "homi/ublk/owner.hpp"
#include "tools/command.hpp"

namespace aisio::tools {
namespace {
using namespace aisio::extents;

struct Opts {
  std::vector<std::string> paths;
  bool json = false;
  bool no_sync = false;
  bool holes = false;
  uint32_t lba_size = 0;
  std::string homid_socket = homic::default_socket();
};

// A file system on /dev/ublkbN: the namespace homid exports there (identity mapping).
std::optional<homi::ublk::Owner> nvme_owner(const std::optional<BlockDevice>& dev, const Opts& o, std::string& why) {
  if (!dev || !homi::ublk::is_ublk_disk(dev->disk)) return std::nullopt;
  try {
    auto owner = homi::ublk::exported_by(dev->disk, o.homid_socket);
    if (!owner) why = "homid at " + o.homid_socket + " does not export " + dev->disk;
    return owner;
  } catch (const Error& e) {
    why = e.what();
    return std::nullopt;
  }
}

void run(const Opts& o) {
  nlohmann::json files = nlohmann::json::array();
  bool first = true;
  for (const auto& path : o.paths) {
    FiemapOptions fo;
    fo.sync = !o.no_sync;
    FileExtents fx = resolve(path, fo);
    std::optional<BlockDevice> dev;
    std::string dev_err;
    try {
      dev = backing_device(path);
    } catch (const Error& e) {
      dev_err = e.what();
    }
    uint32_t lba = o.lba_size ? o.lba_size : dev ? dev->logical_block_size : 512;
    uint64_t disk_off = dev ? dev->disk_offset() : 0;
    uint64_t bs = fx.block_size ? fx.block_size : 4096;
    auto list = o.holes ? fill_holes(fx.extents, fx.size) : fx.extents;
    std::string owner_err;
    auto owner = nvme_owner(dev, o, owner_err);

    if (o.json) {
      nlohmann::json j;
      j["path"] = path;
      j["size"] = fx.size;
      j["dev"] = fmt::format("{}:{}", ::major(fx.dev), ::minor(fx.dev));
      j["ino"] = fx.ino;
      j["block_size"] = fx.block_size;
      j["lba_size"] = lba;
      if (dev) {
        j["device"] = {{"name", dev->name},         {"disk", dev->disk},
                       {"devnode", dev->devnode},   {"disk_devnode", dev->disk_devnode},
                       {"partition", dev->partition}, {"partition_start", dev->partition_start},
                       {"logical_block_size", dev->logical_block_size}};
        if (!dev->slaves.empty()) j["device"]["slaves"] = dev->slaves;
        if (owner)
          j["nvme"] = {{"exported_by", "homid (ublk)"}, {"controller", owner->controller},
                       {"address", owner->address}, {"nsid", owner->nsid}};
        else if (!owner_err.empty())
          j["nvme_error"] = owner_err;
        if (!dev->loop_backing_file.empty()) {
          j["device"]["loop_backing_file"] = dev->loop_backing_file;
          j["device"]["loop_offset"] = dev->loop_offset;
        }
      } else {
        j["device"] = nullptr;
        j["device_error"] = dev_err;
      }
      nlohmann::json ex = nlohmann::json::array();
      for (const auto& e : list) {
        nlohmann::json x{{"logical", e.logical}, {"length", e.length}, {"flags", flag_list(e.flags)}};
        if (!e.has(kExtHole | kExtDelalloc | kExtUnknown)) {
          x["physical"] = e.physical;
          uint64_t d = e.physical + disk_off;
          x["slba"] = d / lba;
          x["nlb"] = (d % lba + e.length + lba - 1) / lba;
        }
        ex.push_back(std::move(x));
      }
      j["extents"] = std::move(ex);
      files.push_back(std::move(j));
      continue;
    }

    if (!first) fmt::print("\n");
    first = false;
    if (dev) {
      std::string where = dev->partition ? "partition of " + dev->disk_devnode : "whole disk";
      if (!dev->loop_backing_file.empty())
        where += fmt::format(", loop on {} at byte {}", dev->loop_backing_file, dev->loop_offset);
      if (!dev->slaves.empty()) where += ", stacked on " + fmt::format("{}", fmt::join(dev->slaves, ","));
      fmt::print("{}: {} bytes, {} extents; device {} ({}), LBA {} B, disk offset {}\n", path, fx.size,
                 fx.extents.size(), dev->devnode, where, lba, disk_off);
      if (owner)
        fmt::print(" NVMe: controller '{}' ({}) namespace {}, exported by homid as {}: LBAs below are that "
                   "namespace's\n",
                   owner->controller, owner->address, owner->nsid, owner->path);
      else if (!owner_err.empty())
        fmt::print(" NVMe: unknown ({})\n", owner_err);
      if (!dev->slaves.empty())
        fmt::print(" note: {} is a stacked device (device-mapper/md): LBAs below are on it, not on a namespace\n",
                   dev->name);
    }
    else
      fmt::print("{}: {} bytes, {} extents; device unknown ({})\n", path, fx.size, fx.extents.size(), dev_err);
    if (list.empty()) {
      fmt::print(" no extents\n");
      continue;
    }
    fmt::print(" {:>4}: {:<22} {:<22} {:<24} {:>10} {}\n", "EXT", "FILE-OFFSET", "BLOCK-RANGE", "LBA-RANGE", "TOTAL",
               "FLAGS");
    for (size_t i = 0; i < list.size(); ++i) {
      const auto& e = list[i];
      std::string fo_s = fmt::format("[{}..{}]", e.logical / bs, (e.end() + bs - 1) / bs - 1);
      std::string br, lr;
      if (e.has(kExtHole)) {
        br = "hole";
      } else if (e.has(kExtDelalloc | kExtUnknown)) {
        br = "delalloc/unknown";
      } else {
        br = fmt::format("{}..{}", e.physical / bs, (e.physical + e.length + bs - 1) / bs - 1);
        uint64_t d = e.physical + disk_off;
        lr = fmt::format("{}..{}", d / lba, (d + e.length + lba - 1) / lba - 1);
      }
      fmt::print(" {:>4}: {:<22} {:<22} {:<24} {:>10} {}\n", i, fo_s, br, lr, (e.length + bs - 1) / bs,
                 flag_names(e.flags));
    }
  }
  if (o.json) fmt::print("{}\n", nlohmann::json{{"files", files}}.dump(2));
}

CommandRegistrar reg(60, [](CLI::App& app) {
  auto o = std::make_shared<Opts>();
  auto* c = app.add_subcommand("extents", "Show a file's extents (FIEMAP) with device blocks and NVMe LBAs");
  c->add_option("paths", o->paths, "Files")->required();
  c->add_flag("--json", o->json, "JSON output");
  c->add_flag("--no-sync", o->no_sync, "Do not flush delayed allocations first (delalloc extents are reported)");
  c->add_flag("--holes", o->holes, "List holes as extents");
  c->add_option("--homid-socket", o->homid_socket, "homid to ask about a ublk device (/dev/ublkbN)")
      ->capture_default_str();
  c->add_option("--lba-size", o->lba_size, "Namespace LBA size (default: the device's logical block size)");
  c->callback([o] { run(*o); });
});

}  // namespace
}  // namespace aisio::tools
