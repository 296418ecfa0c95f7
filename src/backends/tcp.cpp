#include "backends/tcp.hpp"

#include "common/error.hpp"
#include "target/target.hpp"
#include "tcp/controller.hpp"

namespace aisio::backends {

TcpTarget tcp_target_of(std::shared_ptr<target::Target> tgt, uint32_t nsid) {
  tcp::Controller* c = tgt->tcp();
  if (!c) throw Error(Errc::invalid_argument, tgt->describe() + " is not an NVMe/TCP target");
  TcpTarget t;
  const auto ns = tgt->ns(nsid);
  t.describe = tgt->describe();
  t.model = tgt->model();
  t.nsid = nsid;
  t.lba_size = ns.lba_size;
  t.ns_bytes = ns.bytes();
  t.mdts_bytes = tgt->max_transfer();
  t.max_queue_entries = tgt->max_queue_entries();
  t.make_queue_pair = [c](const tcp::QueueOptions& o) { return c->create_queue_pair(o); };
  t.keep = tgt;
  return t;
}

}  // namespace aisio::backends
