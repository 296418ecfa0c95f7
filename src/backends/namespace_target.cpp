#include "backends/namespace_target.hpp"

#include <fmt/format.h>

#include "common/error.hpp"
#include "target/target.hpp"

namespace aisio::backends {

void NamespaceTarget::check_queue_entries(uint32_t qd, uint64_t entries) const {
  if (entries > max_queue_entries)
    throw Error(Errc::invalid_argument, fmt::format("{}: --qd {} needs a queue of {} entries; the controller allows {} "
                                                    "(CAP.MQES)", describe, qd, entries, max_queue_entries));
}

void describe_namespace(NamespaceTarget& ns, const std::shared_ptr<target::Target>& t, uint32_t nsid) {
  const auto g = t->ns(nsid);
  ns.describe = t->describe();
  ns.model = t->model();
  ns.nsid = nsid;
  ns.lba_size = g.lba_size;
  ns.ns_bytes = g.bytes();
  ns.mdts_bytes = t->max_transfer();
  ns.max_queue_entries = t->max_queue_entries();
  ns.keep = t;
}

}  // namespace aisio::backends
