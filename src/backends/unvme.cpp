#include "backends/unvme.hpp"

#include "nvme/controller.hpp"
#include "target/target.hpp"

namespace aisio::backends {

UnvmeTarget target_of(std::shared_ptr<target::Target> tgt, uint32_t nsid) {
  UnvmeTarget t;
  const auto ns = tgt->ns(nsid);
  t.describe = tgt->describe();
  t.model = tgt->model();
  t.nsid = nsid;
  t.lba_size = ns.lba_size;
  t.ns_bytes = ns.bytes();
  t.page_size = tgt->page_size();
  t.mdts_bytes = tgt->max_transfer();
  t.max_queue_entries = tgt->max_queue_entries();
  t.dma = tgt->dma();
  t.make_queue_pair = [p = tgt.get(), nsid](const nvme::QueueOptions& o) { return p->create_queue_pair(o, nsid); };
  t.ctrl = tgt->controller();
  t.keep = tgt;
  return t;
}

UnvmeTarget target_of(std::shared_ptr<nvme::Controller> ctrl, uint32_t nsid) {
  return target_of(target::adopt(std::move(ctrl), ""), nsid);
}

}  // namespace aisio::backends
