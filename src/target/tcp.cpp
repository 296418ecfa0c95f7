// tcp://HOST[:PORT]/SUBNQN: a fabrics controller reached over NVMe/TCP. Its I/O queues
// are tcp::QueuePairs (Target::tcp()); data buffers are plain host memory (the kernel's
// socket layer copies them), which dma() hands out so that callers allocating buffers
// through the Target keep working.
#include <fmt/format.h>

#include "common/error.hpp"
#include "target/open.hpp"
#include "tcp/controller.hpp"

namespace aisio::target {

namespace {

class TcpTarget final : public Target {
 public:
  TcpTarget(std::unique_ptr<tcp::Controller> c, std::string describe)
      : ctrl_(std::move(c)), describe_(std::move(describe)), dma_(DmaHeap::create(make_identity_backend())) {}

  std::string describe() const override { return describe_; }
  std::string model() const override { return nvme::trim_id_string(ctrl_->id().mn, sizeof ctrl_->id().mn); }
  NamespaceGeometry ns(uint32_t nsid) const override {
    const auto& n = ctrl_->ns(nsid);
    return {n.nsid, n.lba_size, n.nsze};
  }
  std::unique_ptr<nvme::QueuePair> create_queue_pair(const nvme::QueueOptions&, uint32_t) override {
    throw Error(Errc::not_supported, describe_ + ": an NVMe/TCP queue is a tcp::QueuePair (Target::tcp()), "
                                                 "not a PCIe queue pair");
  }
  const std::shared_ptr<DmaHeap>& dma() const override { return dma_; }
  uint32_t max_queue_entries() const override { return ctrl_->max_queue_entries(); }
  size_t max_transfer() const override { return ctrl_->mdts_bytes(); }
  uint32_t page_size() const override { return 4096; }
  tcp::Controller* tcp() const override { return ctrl_.get(); }

 private:
  std::unique_ptr<tcp::Controller> ctrl_;
  std::string describe_;
  std::shared_ptr<DmaHeap> dma_;
};

}  // namespace

std::shared_ptr<Target> open_tcp(const std::string& url, const OpenOptions& o) {
  tcp::ControllerOptions co;
  co.admin_timeout = o.controller.admin_timeout;
  co.io_timeout = o.controller.io_timeout;
  co.io_queues = o.controller.io_queues;
  const tcp::Address a = tcp::parse_address(url);
  if (a.ctrl_loss_tmo_s >= 0) co.ctrl_loss_timeout = std::chrono::seconds(a.ctrl_loss_tmo_s);
  auto c = tcp::Controller::connect(a, co);
  return std::make_shared<TcpTarget>(std::move(c), url);
}

}  // namespace aisio::target
