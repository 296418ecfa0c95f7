#include "backends/unvme.hpp"

#include "nvme/controller.hpp"
#include "target/target.hpp"

namespace aisio::backends {

UnvmeTarget target_of(std::shared_ptr<target::Target> tgt, uint32_t nsid) {
  UnvmeTarget t;
  describe_namespace(t, tgt, nsid);
  t.page_size = tgt->page_size();
  t.dma = tgt->dma();
  t.make_queue_pair = [p = tgt.get(), nsid](const nvme::QueueOptions& o) { return p->create_queue_pair(o, nsid); };
  t.ctrl = tgt->controller();
  return t;
}

UnvmeTarget target_of(std::shared_ptr<nvme::Controller> ctrl, uint32_t nsid) {
  return target_of(target::adopt(std::move(ctrl), ""), nsid);
}

}  // namespace aisio::backends
