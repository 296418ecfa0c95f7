// An NVMe controller driven from user space through two narrow interfaces: its
// register window (BAR0) and a DMA memory heap.
//
// create() performs bring-up (NVMe 2.0 section 3.5.1): disable and wait for
// CSTS.RDY = 0 within CAP.TO, program AQA/ASQ/ACQ, enable with IOSQES = 6 and
// IOCQES = 4, wait for CSTS.RDY = 1, Identify Controller, Set Features Number of
// Queues, Identify the active namespaces. I/O queue pairs are created on demand.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "memory/dma.hpp"
#include "nvme/completion.hpp"
#include "nvme/namespace.hpp"
#include "nvme/queue_pair.hpp"
#include "pcie/mmio.hpp"
#include "spec/identify.hpp"
#include "spec/registers.hpp"

namespace aisio::nvme {

struct ControllerOptions {
  uint32_t admin_depth = 32;
  uint16_t io_queues = 64;  // I/O queue pairs asked for with Set Features Number of Queues
  std::chrono::milliseconds admin_timeout{10000};
  std::chrono::milliseconds io_timeout{30000};  // default for queue pairs
};

class Controller : public std::enable_shared_from_this<Controller>, public QueueOwner {
 public:
  static std::shared_ptr<Controller> create(std::shared_ptr<MmioWindow> bar0, std::shared_ptr<DmaHeap> dma,
                                            ControllerOptions opt = {});
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  const IdentifyController& id() const { return *id_; }
  Cap cap() const { return cap_; }
  Version version() const { return vs_; }
  const std::vector<Namespace>& namespaces() const { return namespaces_; }
  const Namespace& ns(uint32_t nsid) const;  // throws for an inactive NSID
  uint32_t page_size() const { return 1u << page_shift_; }
  size_t mdts_bytes() const { return mdts_bytes_; }  // 0: no limit
  bool sgl_supported() const { return sgls_supported(id_->sgls); }
  uint16_t io_queue_limit() const { return io_queue_limit_; }  // granted by Number of Queues
  const ControllerOptions& options() const { return opt_; }
  MmioWindow& bar0() const { return *bar0_; }
  const std::shared_ptr<DmaHeap>& dma() const { return dma_; }
  std::string describe() const { return bar0_->describe(); }

  // Creates an I/O queue pair (Create I/O CQ, then Create I/O SQ) with the lowest free
  // queue id. Throws Error naming the NVMe status if the controller refuses.
  std::unique_ptr<QueuePair> create_queue_pair(QueueOptions opt = {});

  // Queues for someone else (homid for its clients, GPU initiators): the memory is the
  // caller's, given by bus address; returns the granted queue id. Throws on refusal.
  uint16_t create_io_queue_at(uint32_t depth, uint64_t sq_bus, uint64_t cq_bus);
  void delete_io_queue_at(uint16_t qid);  // Delete I/O SQ, then CQ; frees the id
  uint32_t sq_doorbell_offset(uint16_t qid) const { return sq_tail_doorbell(qid, cap_.dstrd()); }
  uint32_t cq_doorbell_offset(uint16_t qid) const { return cq_head_doorbell(qid, cap_.dstrd()); }
  // Geometry for a queue pair whose queues are created with create_io_queue_at().
  QueueGeometry geometry(size_t max_transfer = 0) const;

  // Runs an admin command synchronously; safe from any thread. data may be null.
  Completion admin(const Sqe& sqe, const DmaBuffer* data = nullptr, size_t len = 0);
  // As admin(), but throws Error(status) unless the command succeeded.
  uint32_t admin_checked(const Sqe& sqe, const char* what, const DmaBuffer* data = nullptr, size_t len = 0);

  // Error Information and SMART log pages.
  std::vector<ErrorLogEntry> error_log(uint32_t entries = 16);
  SmartLog smart_log();

  bool fatal() const override { return bar0_->read32(reg::CSTS) & csts::CFS; }
  uint32_t csts() const { return bar0_->read32(reg::CSTS); }

  // Controller reset: disable, re-enable, re-create the admin queue and every live I/O
  // queue pair in place. Outstanding commands end with HostStatus::aborted_reset. The
  // caller must not use the queue pairs from other threads meanwhile.
  void reset();
  // Orderly shutdown: delete I/O queues, CC.SHN = normal, wait for CSTS.SHST = complete.
  void shutdown();

 private:
  Controller(std::shared_ptr<MmioWindow> bar0, std::shared_ptr<DmaHeap> dma, ControllerOptions opt);
  friend class QueuePair;
  void disable();
  void enable();
  void wait_ready(bool ready);
  void init_admin_queue();
  void negotiate_queues();
  void identify();
  void create_io_queues(QueuePair& qp);
  void release_queue(QueuePair& qp) override;
  uint16_t take_qid();
  void free_qid(uint16_t qid);

  std::shared_ptr<MmioWindow> bar0_;
  std::shared_ptr<DmaHeap> dma_;
  ControllerOptions opt_;
  Cap cap_;
  Version vs_;
  uint32_t page_shift_ = 12;
  size_t mdts_bytes_ = 0;
  std::chrono::milliseconds ready_timeout_{0};
  uint16_t io_queue_limit_ = 0;
  std::unique_ptr<IdentifyController> id_;
  std::vector<Namespace> namespaces_;

  std::mutex admin_mu_;
  std::unique_ptr<QueuePair> admin_;
  std::mutex queues_mu_;
  std::vector<QueuePair*> live_;     // I/O queue pairs, for reset
  std::vector<bool> qid_used_;       // index = qid
  bool shut_down_ = false;
};

}  // namespace aisio::nvme
