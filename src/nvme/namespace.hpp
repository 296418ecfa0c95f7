// An active namespace as the driver sees it after Identify Namespace.
#pragma once
#include <cstdint>
#include <memory>

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

}  // namespace aisio::nvme
