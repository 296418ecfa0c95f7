// One namespace exported as /dev/ublkb<id>: the ublk device's life cycle and its queue
// threads. Each ublk hardware queue has a thread of its own, an io_uring of 128-byte
// SQEs on /dev/ublkc<id>, an NVMe I/O queue pair that homid never grants to a client,
// and one DMA buffer per tag from the controller's heap, which the kernel copies the
// request's data to and from (one copy, no bounce in between).
//
//   create: ADD_DEV (features: USER_RECOVERY + REISSUE when the kernel has them),
//           SET_PARAMS (from Identify), queue threads FETCH every tag, START_DEV.
//           A device left QUIESCED by a homid that was killed is recovered instead
//           (START_USER_RECOVERY, FETCH, END_USER_RECOVERY): the kernel re-issues the
//           requests that were in flight, so no acknowledged write is lost.
//   destroy: STOP_DEV (the kernel drains the disk while the threads keep serving),
//           threads end, char device closed, DEL_DEV.
// Any failure in create undoes what was done (nothing half-created is left behind).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "homi/ublk/control.hpp"
#include "homi/ublk/export_config.hpp"
#include "homi/ublk/translate.hpp"
#include "homi/wire.hpp"
#include "nvme/controller.hpp"

namespace aisio::homi::ublk {

class Device {
 public:
  // `who` names the controller in messages. Throws Error.
  static std::unique_ptr<Device> create(Control& ctl, nvme::Controller& ctrl, uint32_t nsid, const ExportConfig& cfg,
                                        const std::string& who);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  uint32_t nsid() const { return nsid_; }
  std::string disk_name() const { return "ublkb" + std::to_string(dev_id_); }
  // What `aisio homi status` shows of it: queues summed, their NVMe qids listed. `ctrl`
  // is the controller's index in homid's configuration.
  wire::UblkStat stat(uint32_t ctrl) const;

 private:
  struct Queue;
  Device(Control& ctl, nvme::Controller& ctrl, uint32_t nsid);
  void open_queues(const NamespaceGeometry& geo);
  void teardown() noexcept;

  Control& ctl_;
  nvme::Controller& ctrl_;
  uint32_t nsid_;
  uint32_t dev_id_ = 0;
  bool added_ = false, started_ = false, recovered_ = false;
  DevInfo info_{};
  uint32_t max_io_bytes_ = 0;
  int char_fd_ = -1;
  std::vector<std::unique_ptr<Queue>> queues_;
};

}  // namespace aisio::homi::ublk
