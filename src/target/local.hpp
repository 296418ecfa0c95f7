// A Target over a controller this process drives with our driver (emu:, embedded,
// image:, a PCI address, a farm member). Private to src/target.
#pragma once
#include <memory>
#include <string>

#include "target/target.hpp"

namespace aisio::target {

class LocalTarget final : public Target {
 public:
  // `keep` is what the controller talks to (a software controller, an attachment, a
  // PCIe device); it is released after the controller, so the driver shuts the
  // controller down while the device still answers.
  LocalTarget(std::shared_ptr<nvme::Controller> ctrl, std::string describe, std::shared_ptr<void> keep,
              emu::SoftController* soft = nullptr, HomidRef homid = {});
  ~LocalTarget() override;

  std::string describe() const override { return describe_; }
  std::string model() const override { return nvme::trim_id_string(ctrl_->id().mn, sizeof ctrl_->id().mn); }
  NamespaceGeometry ns(uint32_t nsid) const override;
  std::unique_ptr<nvme::QueuePair> create_queue_pair(const nvme::QueueOptions& o, uint32_t nsid) override;
  const std::shared_ptr<DmaHeap>& dma() const override { return ctrl_->dma(); }
  uint32_t max_queue_entries() const override { return ctrl_->cap().mqes() + 1u; }
  uint32_t page_size() const override { return ctrl_->page_size(); }
  size_t max_transfer() const override { return ctrl_->mdts_bytes(); }
  std::shared_ptr<nvme::Controller> controller() const override { return ctrl_; }
  emu::SoftController* soft_controller() const override { return soft_; }
  HomidRef homid() const override { return homid_; }

 private:
  std::shared_ptr<nvme::Controller> ctrl_;
  std::string describe_;
  std::shared_ptr<void> keep_;
  emu::SoftController* soft_ = nullptr;
  HomidRef homid_;  // a VF granted by homid
};

}  // namespace aisio::target
