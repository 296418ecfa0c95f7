#include "backends/tcp.hpp"

#include "common/error.hpp"
#include "target/target.hpp"
#include "tcp/controller.hpp"

namespace aisio::backends {

TcpTarget tcp_target_of(std::shared_ptr<target::Target> tgt, uint32_t nsid) {
  tcp::Controller* c = tgt->tcp();
  if (!c) throw Error(Errc::invalid_argument, tgt->describe() + " is not an NVMe/TCP target");
  TcpTarget t;
  describe_namespace(t, tgt, nsid);
  t.make_queue_pair = [c](const tcp::QueueOptions& o) { return c->create_queue_pair(o); };
  return t;
}

}  // namespace aisio::backends
