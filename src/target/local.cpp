#include "target/local.hpp"

namespace aisio::target {

LocalTarget::LocalTarget(std::shared_ptr<nvme::Controller> ctrl, std::string describe, std::shared_ptr<void> keep,
                         emu::SoftController* soft, HomidRef homid)
    : ctrl_(std::move(ctrl)), describe_(std::move(describe)), keep_(std::move(keep)), soft_(soft),
      homid_(std::move(homid)) {}

LocalTarget::~LocalTarget() {
  ctrl_.reset();  // orderly shutdown (CC.SHN) while the device still answers
  keep_.reset();
}

NamespaceGeometry LocalTarget::ns(uint32_t nsid) const {
  const auto& n = ctrl_->ns(nsid);  // throws for an inactive NSID
  return {n.nsid, n.lba_size, n.nsze};
}

std::unique_ptr<nvme::QueuePair> LocalTarget::create_queue_pair(const nvme::QueueOptions& o, uint32_t) {
  return ctrl_->create_queue_pair(o);  // a queue of ours reaches every namespace
}

std::shared_ptr<Target> adopt(std::shared_ptr<nvme::Controller> ctrl, std::string describe,
                              std::shared_ptr<void> keep) {
  if (describe.empty()) describe = ctrl->describe();
  return std::make_shared<LocalTarget>(std::move(ctrl), std::move(describe), std::move(keep));
}

}  // namespace aisio::target
