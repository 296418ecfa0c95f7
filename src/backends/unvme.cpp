#include "backends/unvme.hpp"

#include "nvme/controller.hpp"

namespace aisio::backends {

UnvmeTarget target_of(std::shared_ptr<nvme::Controller> ctrl, uint32_t nsid) {
  UnvmeTarget t;
  const auto& ns = ctrl->ns(nsid);
  t.describe = ctrl->describe();
  std::string model(reinterpret_cast<const char*>(ctrl->id().mn), sizeof ctrl->id().mn);
  while (!model.empty() && (model.back() == ' ' || model.back() == '\0')) model.pop_back();
  t.model = model;
  t.nsid = nsid;
  t.lba_size = ns.lba_size;
  t.ns_bytes = ns.bytes();
  t.page_size = ctrl->page_size();
  t.mdts_bytes = ctrl->mdts_bytes();
  t.max_queue_entries = ctrl->cap().mqes() + 1;
  t.dma = ctrl->dma();
  t.make_queue_pair = [c = ctrl.get()](const nvme::QueueOptions& o) { return c->create_queue_pair(o); };
  t.ctrl = ctrl;
  t.keep = ctrl;
  return t;
}

}  // namespace aisio::backends
