// An active namespace as the driver sees it after Identify Namespace.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "spec/identify.hpp"

namespace aisio::nvme {

struct Namespace {
  uint32_t nsid = 0;
  uint32_t lba_size = 0;    // bytes per logical block (from FLBAS / LBAF)
  uint64_t nsze = 0;        // size in logical blocks
  uint64_t ncap = 0;
  std::shared_ptr<const IdentifyNamespace> id;

  uint64_t bytes() const { return nsze * lba_size; }
};

// The active namespaces, for the driver and the NVMe/TCP host alike: the Active
// Namespace ID list (CNS 02h), or 1..NN where a controller lacks it (NVMe 1.0), then
// Identify Namespace of each; one that fails or has NSZE 0 is left out.
// identify(cns, nsid): the command's 4096-byte page, or nullptr when it failed.
std::vector<Namespace> active_namespaces(uint32_t nn,
                                         const std::function<const uint8_t*(uint8_t cns, uint32_t nsid)>& identify);

}  // namespace aisio::nvme
