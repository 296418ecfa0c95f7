// What a device backend (unvme, tcp) knows of the namespace its queues reach: the
// opened target's identity and limits. UnvmeTarget and TcpTarget add their queue-pair
// factories to it; keep holds the target (and so the controller) alive.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace aisio::target {
class Target;
}

namespace aisio::backends {

struct NamespaceTarget {
  std::string describe;               // the handle, or what it is ("embedded (image /tmp/x.img)")
  std::string model;                  // Identify Controller MN, trimmed ("" when unknown)
  uint32_t nsid = 1;
  uint32_t lba_size = 512;
  uint64_t ns_bytes = 0;              // namespace size
  size_t mdts_bytes = 0;              // 0: no limit
  uint32_t max_queue_entries = 1024;  // CAP.MQES + 1 (or what homid grants)
  std::shared_ptr<void> keep;         // what the queue pairs need alive

  // Bytes one command may move: MDTS, or 1 MiB when the controller sets no limit.
  size_t max_command_bytes() const { return mdts_bytes ? mdts_bytes : size_t(1) << 20; }
  // Throws Error(invalid_argument) when --qd qd needs a queue of more entries than the
  // controller allows.
  void check_queue_entries(uint32_t qd, uint64_t entries) const;
};

// Fills ns from an opened target; throws Error(invalid_argument) for an inactive NSID.
void describe_namespace(NamespaceTarget& ns, const std::shared_ptr<target::Target>& t, uint32_t nsid);

}  // namespace aisio::backends
