// A target: one NVMe controller opened from a handle, whoever drives it. Every command
// and library entry point opens controllers through target::open, and the I/O backends
// take what a Target gives them (queue pairs, DMA memory, namespace geometry), so a
// benchmark or a file reader runs unchanged on each kind of controller:
//
//   emu:NAME          a software controller process (`aisio emu --name NAME`)
//   embedded[:SIZE]   a software controller inside this process (RAM namespace of SIZE)
//   image:PATH        a software controller inside this process whose namespace is the
//                     file PATH (namespace byte X == file byte X)
//   DDDD:BB:DD.F      a PCIe function bound to uio_pci_generic or vfio-pci
//   homid[:SOCKET][/CONTROLLER]   queue pairs granted by homid (default socket:
//                     $HOMID_SOCKET or /run/homid/homid.sock; controller: name or index, 0)
//   homid-vf[:SOCKET][/PF]   an SR-IOV virtual function granted by homid, which this
//                     process drives whole (PF: the sriov-pf controller; any when absent)
//   tcp://HOST[:PORT]/NQN[?ctrl_loss_tmo=S]   a controller of an NVMe over TCP subsystem
//                     (port 4420 by default; hostnqn from /etc/nvme/hostnqn, else
//                     generated; broken connections re-made for S seconds, 10 by
//                     default): queues are tcp::QueuePairs (tcp()), data in host memory
//
//   auto t  = aisio::target::open("emu:demo");
//   auto qp = t->create_queue_pair({.depth = 128}, /*nsid*/ 1);
//   auto buf = t->dma()->alloc(1 << 20);
//
// The Target owns the controller's lifetime: the driver's controller is shut down
// before the software controller it talks to is stopped, whoever lets go last.
// Nothing here is on the I/O path (a queue pair, once created, is the driver's own).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "memory/dma.hpp"
#include "nvme/controller.hpp"

namespace aisio::homic {
class Client;
}
namespace aisio::emu {
class SoftController;
}
namespace aisio::tcp {
class Controller;
}

namespace aisio::target {

struct NamespaceGeometry {
  uint32_t nsid = 0;
  uint32_t lba_size = 0;  // bytes per logical block
  uint64_t blocks = 0;    // NSZE
  uint64_t bytes() const { return blocks * lba_size; }
};

// Through homid: the daemon connection, and the controller index homid's answers name
// for this target's namespaces (any, for a VF: homid names its PF).
struct HomidRef {
  static constexpr uint32_t kAnyController = UINT32_MAX;
  std::shared_ptr<homic::Client> client;
  uint32_t controller = kAnyController;
  explicit operator bool() const { return client != nullptr; }
};

class Target {
 public:
  virtual ~Target() = default;
  // The handle it was opened from, or what it is ("image:/tmp/x.img").
  virtual std::string describe() const = 0;
  // The model number from Identify Controller, trimmed.
  virtual std::string model() const = 0;
  // Throws Errc::invalid_argument for a namespace that is not active.
  virtual NamespaceGeometry ns(uint32_t nsid) const = 0;
  // A ready I/O queue pair (Create I/O CQ + SQ); nsid: the namespace it will use.
  virtual std::unique_ptr<nvme::QueuePair> create_queue_pair(const nvme::QueueOptions& o, uint32_t nsid) = 0;
  // Memory the controller can reach; the backends' data buffers come from here.
  virtual const std::shared_ptr<DmaHeap>& dma() const = 0;
  // CAP.MQES + 1 (or what homid grants).
  virtual uint32_t max_queue_entries() const = 0;
  // The largest transfer of one command (MDTS) in bytes; 0: no limit.
  virtual size_t max_transfer() const = 0;
  // The memory page size (CC.MPS): the alignment PRP entries need.
  virtual uint32_t page_size() const = 0;
  // The driver's controller when this process drives it; null through homid.
  virtual std::shared_ptr<nvme::Controller> controller() const { return nullptr; }
  // The homid connection when queues or the function come from the daemon (for what
  // only it does, such as resolving extents); empty otherwise.
  virtual HomidRef homid() const { return {}; }
  // The software controller behind this target when it runs inside this process
  // (embedded, image:, a farm member): its fault injection and its own counters, which
  // tests and the GPU runs cross-check against; null otherwise.
  virtual emu::SoftController* soft_controller() const { return nullptr; }
  // The fabrics controller behind a tcp:// target, whose queues are tcp::QueuePairs
  // (create_queue_pair refuses); null otherwise.
  virtual tcp::Controller* tcp() const { return nullptr; }
};

struct OpenOptions {
  nvme::ControllerOptions controller;  // the driver's options where it owns the controller
  uint32_t image_lba_size = 512;       // image: namespaces
  unsigned emu_workers = 1;            // image: and embedded software controllers
  std::string client_name;             // homid: shown by `aisio homi clients` ("": the program)
};

// The handle forms, for a command's help text.
inline constexpr const char* kHandleHelp =
    "emu:NAME, embedded[:SIZE], image:PATH, a PCI address like 0000:01:00.0, homid[:SOCKET][/CONTROLLER], "
    "homid-vf[:SOCKET][/PF] or tcp://HOST[:PORT]/SUBNQN";

// Throws aisio::Error: invalid_argument for a handle of no known form (the message lists
// the forms), not_supported for homid: where homid's client is not built,
// and whatever opening the controller throws.
std::shared_ptr<Target> open(const std::string& handle, const OpenOptions& o = {});

// A Target over a controller this process already drives; `keep` holds what the
// controller needs alive (it is released after the controller).
std::shared_ptr<Target> adopt(std::shared_ptr<nvme::Controller> ctrl, std::string describe,
                              std::shared_ptr<void> keep = {});

}  // namespace aisio::target
