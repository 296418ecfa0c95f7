// One controller owned by homid: a software controller run in-process or a PCIe
// function through the user-space driver. Besides the nvme::Controller (whose admin
// queue stays inside homid) it knows how to
//   - hand a client the doorbells of one queue (grant_doorbells / revoke_doorbells),
//   - make a client's memfd reachable by the device (register_memory),
//   - tell which namespace a block device / image holds (match_backing).
//
// Doorbell isolation. Software controller: CAP.DSTRD = 10, so queue q's SQ tail and CQ
// head doorbells are the two 4 KiB pages at 0x1000 + 2q * 4 KiB. On grant, homid
// replaces those two pages of the register window with a fresh 8 KiB memfd (mmap
// MAP_FIXED over its own mapping, which the device threads read), and hands the client
// only that memfd; on revoke it maps the register pages back, so a client that kept
// its mapping writes into nothing the device reads. PCIe: the doorbells of all queues
// share BAR0's page 0x1000 when DSTRD = 0 (a hardware limit; SR-IOV virtual functions
// give each tenant a BAR of its own): the client gets a descriptor of BAR0
// (sysfs resource0, or the vfio device) and the offset of the doorbell page. That
// descriptor is not confined to the page, so PCIe clients must be trusted not to map
// more (document in the policy who they are).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "homi/config.hpp"
#include "homi/transport.hpp"
#include "homi/wire.hpp"
#include "nvme/controller.hpp"

namespace aisio::extents {
struct BlockDevice;
}

namespace aisio::homi {

// A client's memory mapped for the device. Dropping it unmaps it from the device (and
// only then from homid), so it must outlive every queue that could DMA into it.
struct DeviceRegion {
  uint64_t length = 0;
  uint32_t page_shift = 63;
  std::vector<uint64_t> bus;
  std::shared_ptr<void> mapping;
  // True when [bus, bus + len) lies inside this region and is bus-contiguous.
  bool contains(uint64_t bus, uint64_t len) const;
};

struct BackingMatch {
  uint32_t nsid = 0, lba_size = 0;
  uint64_t device_offset = 0;  // add to file-system byte offsets to get namespace byte offsets
};
// The controller (index and name, as clients see them) whose namespace holds a file.
struct BackingOwner {
  uint32_t index = 0;
  std::string name;
  BackingMatch at;
};

// Where the file system on `fdev` starts in the namespace that `b` names, if `fdev` is
// (a partition of) that block device or a loop device of that image.
std::optional<uint64_t> backing_offset(const NamespaceBacking& b, const extents::BlockDevice& fdev);

class ManagedController {
 public:
  // Opens (software: creates and starts) the controller and brings it up. Throws.
  static std::unique_ptr<ManagedController> open(const ControllerConfig& cfg, uint32_t index);
  ~ManagedController();  // orderly shutdown of the controller
  ManagedController(const ManagedController&) = delete;
  ManagedController& operator=(const ManagedController&) = delete;

  const std::string& name() const { return cfg_.name; }
  uint32_t index() const { return index_; }
  nvme::Controller& ctrl() { return *ctrl_; }
  wire::Kind kind() const { return kind_; }
  wire::DmaKind dma_kind() const;
  wire::ControllerInfo info(uint16_t queues_in_use) const;
  wire::ControllerStat stat(uint16_t queues_in_use) const;
  bool fatal() const { return ctrl_->fatal(); }

  // Fills the mapping fields of `ok` (map_offset, map_length, the doorbell offsets in
  // it, kGrantIsolated) and returns the descriptor to map.
  Fd grant_doorbells(uint16_t qid, wire::AllocQueueOk& ok);
  void revoke_doorbells(uint16_t qid) noexcept;

  // Takes the memfd; len bytes of it. Throws Error naming what the memfd lacks.
  DeviceRegion register_memory(Fd memfd, uint64_t len);

  std::optional<BackingMatch> match_backing(const extents::BlockDevice& dev) const;

 private:
  ManagedController(ControllerConfig cfg, uint32_t index) : cfg_(std::move(cfg)), index_(index) {}
  ControllerConfig cfg_;
  uint32_t index_;
  wire::Kind kind_ = wire::Kind::soft;
  std::shared_ptr<void> device_;  // SoftController or pcie::UserDevice
  std::shared_ptr<nvme::Controller> ctrl_;
  // pci: BAR0 descriptor to hand out (dup'ed per grant) and the offset of BAR0 in it.
  Fd bar_fd_;
  uint64_t bar_fd_offset_ = 0;
  std::map<uint16_t, bool> granted_;
};

}  // namespace aisio::homi
