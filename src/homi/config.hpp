// homid configuration (TOML; packaging/homid.toml is a commented example).
//
//   [daemon]     socket, socket_mode, socket_group, log_level
//   [limits]     max_clients, max_queues_total, max_queues_per_client,
//                max_dma_bytes_per_client, max_regions_per_client, max_queue_depth
//   [[controller]]  type = "soft" (a software controller run inside homid) or "pci"
//                   (a PCIe function bound to uio_pci_generic / vfio-pci), or
//                   "sriov-pf" (an SR-IOV PF left to the kernel nvme driver whose
//                   virtual functions homid enables and grants, one client each), with
//                   [[controller.namespace]] entries naming which block device or image
//                   holds each namespace's bytes (for resolve_extents), and whether homid
//                   exports it to the kernel (ublk, ublk_id, ublk_queues, ublk_depth, ublk_max_io_kib)
//   [[allow]]    who may connect (uids/gids/any) and what they may do: controllers,
//                dataset_roots, max_queues, max_dma_bytes, external_queue_memory, admin
//
// SIGHUP re-reads the file and applies [daemon].log_level, [limits] and [[allow]]; the
// socket and the controllers stay as they were started (changing them needs a restart).
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "emu/config.hpp"
#include "homi/sriov_config.hpp"
#include "homi/ublk/export_config.hpp"

namespace aisio::homi {

struct NamespaceBacking {
  uint32_t nsid = 0;
  std::string block_device;  // the whole-disk block device whose LBA 0 is the namespace's LBA 0
  std::string image;         // or: an image file (attached as a loop device) that holds the namespace
  ublk::ExportConfig ublk;   // ublk = true: exported to the kernel as /dev/ublkbN (homi/ublk/)
};

struct ControllerConfig {
  enum class Kind { soft, pci, sriov_pf };
  std::string name;
  Kind kind = Kind::soft;
  std::string address;                  // pci: the function's BDF
  bool bind = false;                    // pci: bind to uio/vfio when on another driver
  uint16_t io_queues = 64;              // asked with Set Features Number of Queues
  emu::EmuConfig soft;                  // soft: the controller (dstrd forced to 10)
  SriovPfConfig sriov;                  // sriov_pf: the VFs (address = the PF)
  std::vector<NamespaceBacking> backings;
};

struct AccessRule {
  std::string name;
  bool any = false;                      // anyone who can open the socket
  std::vector<uint32_t> uids, gids;
  std::vector<std::string> controllers;  // empty: all
  std::vector<std::string> dataset_roots;  // resolve_extents only under these (empty: never)
  uint32_t max_queues = 0;               // 0: limits.max_queues_per_client
  uint64_t max_dma_bytes = 0;            // 0: limits.max_dma_bytes_per_client
  bool external_queue_memory = false;    // may place queues in unregistered (GPU) memory
  bool admin = false;                    // stats of every client

  bool allows_controller(std::string_view name) const;
  bool allows_path(std::string_view path) const;
};

struct Limits {
  uint32_t max_clients = 64;
  uint32_t max_queues_total = 256;
  uint32_t max_queues_per_client = 8;
  uint64_t max_dma_bytes_per_client = 4ull << 30;
  uint32_t max_regions_per_client = 64;
  uint32_t max_queue_depth = 4096;
};

// What SIGHUP reloads.
struct Policy {
  std::string log_level = "info";
  Limits limits;
  std::vector<AccessRule> rules;

  // The first rule that admits (uid, gid, groups), or nullptr.
  const AccessRule* match(uint32_t uid, uint32_t gid, const std::vector<uint32_t>& groups) const;
};

struct DaemonConfig {
  std::string socket = "/run/homid/homid.sock";
  uint32_t socket_mode = 0660;
  std::optional<uint32_t> socket_group;
  std::vector<ControllerConfig> controllers;
  std::vector<ControllerConfig> sriov_pfs;  // type "sriov-pf" (not in `controllers`: no queues)
  Policy policy;
  std::string source;  // file name, for messages
};

// Throws Error(invalid_argument) naming the file, line and key of the first problem.
DaemonConfig parse_config(std::string_view toml, const std::string& source = "config");
DaemonConfig load_config(const std::string& path);

}  // namespace aisio::homi
