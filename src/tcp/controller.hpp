// A fabrics controller reached over NVMe/TCP: the admin queue (its own connection),
// bring-up through properties, Identify, Keep Alive, and I/O queues on demand, each a
// connection of its own (tcp::QueuePair).
//
// connect(): admin queue (ICReq, Connect with QID 0 and KATO, CNTLID from the
// response); Property Get CAP and VS; Property Set CC (EN, CSS NVM, 4 KiB pages, 64/16
// byte entries); CSTS.RDY = 1 within CAP.TO; Identify Controller (IOCCSZ gives the
// in-capsule limit, MDTS the transfer limit); Set Features Number of Queues; Identify
// the active namespaces. A thread sends Keep Alive every KATO/2 (admin commands are
// serialised by a mutex; the I/O queues never wait for it).
#pragma once
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "nvme/namespace.hpp"
#include "spec/identify.hpp"
#include "spec/registers.hpp"
#include "tcp/fabrics.hpp"
#include "tcp/queue_pair.hpp"

namespace aisio::tcp {

struct ControllerOptions {
  uint32_t admin_depth = 32;
  uint32_t kato_ms = 5000;                     // 0: no Keep Alive
  std::chrono::milliseconds admin_timeout{10000};
  std::chrono::milliseconds io_timeout{30000};
  Digests digests;                              // asked for on every queue
  uint16_t io_queues = 64;                      // asked for with Number of Queues
  // Faults: a broken I/O connection is re-made (with the admin queue and controller
  // association when those broke too), first after reconnect_delay, doubling up to 2 s,
  // until ctrl_loss_timeout has passed; commands outstanding meanwhile are sent again,
  // or end with HostStatus::transport when it passes. 0: no reconnect.
  std::chrono::milliseconds ctrl_loss_timeout{10000};
  std::chrono::milliseconds reconnect_delay{100};
  std::string etc_nvme = "/etc/nvme";           // where hostnqn / hostid are read
};

class Controller {
 public:
  static std::unique_ptr<Controller> connect(const Address& a, const ControllerOptions& o = {});
  ~Controller();  // CC.SHN, then the connections close
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  std::string describe() const { return addr_.describe(); }
  const Address& address() const { return addr_; }
  const HostIdentity& host() const { return host_; }
  uint16_t cntlid() const { return cntlid_; }
  const nvme::IdentifyController& id() const { return *id_; }
  nvme::Cap cap() const { return cap_; }
  nvme::Version version() const { return vs_; }
  const std::vector<nvme::Namespace>& namespaces() const { return namespaces_; }
  const nvme::Namespace& ns(uint32_t nsid) const;  // throws for an inactive NSID
  size_t mdts_bytes() const { return mdts_bytes_; }  // 0: no limit
  uint32_t in_capsule_max() const { return in_capsule_max_; }  // IOCCSZ * 16 - 64
  uint16_t io_queue_limit() const { return io_queue_limit_; }
  uint32_t max_queue_entries() const { return cap_.mqes() + 1u; }
  uint64_t keep_alives() const { return keep_alives_; }
  uint64_t reassociations() const { return reassociations_; }

  // A connected I/O queue with the lowest free QID. depth and timeout from o (0: the
  // controller options' io_timeout); max_transfer capped by MDTS.
  std::unique_ptr<QueuePair> create_queue_pair(QueueOptions o);
  // The QID of a queue pair that is gone may be reused.
  void release_qid(uint16_t qid);

  // Admin commands, from any thread. Throws Error when the connection ends.
  nvme::Completion admin(const nvme::Sqe& sqe, void* data = nullptr, uint32_t len = 0, uint32_t* dw1 = nullptr);
  uint64_t property_get(uint32_t offset, bool eight_bytes);
  void property_set(uint32_t offset, uint64_t value, bool eight_bytes = false);

 private:
  Controller(const Address& a, const ControllerOptions& o);
  void enable();
  void identify();
  void keep_alive_loop();
  // Makes sure the admin queue and the controller association stand (a Keep Alive),
  // re-connecting and re-enabling when they do not; returns the CNTLID to use.
  uint16_t reassociate();
  void connect_admin();

  Address addr_;
  ControllerOptions opt_;
  HostIdentity host_;
  std::mutex admin_mu_;     // one admin command at a time
  std::mutex reassoc_mu_;   // one re-association at a time
  std::unique_ptr<QueuePair> admin_;
  std::atomic<uint16_t> cntlid_{0};  // changes when a re-association makes a new controller
  nvme::Cap cap_;
  nvme::Version vs_;
  std::unique_ptr<nvme::IdentifyController> id_;
  std::vector<nvme::Namespace> namespaces_;
  size_t mdts_bytes_ = 0;
  uint32_t in_capsule_max_ = 0;
  uint16_t io_queue_limit_ = 0;
  std::mutex qid_mu_;
  std::vector<bool> qid_used_;

  std::mutex ka_mu_;
  std::condition_variable ka_cv_;
  bool stop_ = false;
  std::atomic<uint64_t> keep_alives_{0};
  std::atomic<uint64_t> reassociations_{0};
  std::thread ka_;
};

}  // namespace aisio::tcp
