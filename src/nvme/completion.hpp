// What a submitted command ends with: the controller's CQE, or a host-side outcome
// (timeout, aborted by a controller reset) when no CQE came.
#pragma once
#include <cstdint>
#include <string>

#include "spec/status.hpp"

namespace aisio::nvme {

enum class HostStatus : uint8_t {
  none,           // the controller completed the command; see status
  timeout,        // no completion within the command's timeout
  aborted_reset,  // the controller was reset while the command was outstanding
  controller_fatal,  // CSTS.CFS was seen while the command was outstanding
  transport,      // the fabrics connection ended while the command was outstanding
};

struct Completion {
  Status status{};
  uint32_t dw0 = 0;
  HostStatus host = HostStatus::none;

  bool ok() const { return host == HostStatus::none && status.ok(); }
  std::string describe() const;  // "Successful Completion ...", "timeout", ...
};

// Completion callback: a plain function pointer and argument, so the I/O path makes no
// allocation and no indirect call through std::function.
using IoCallback = void (*)(void* arg, Completion c);

}  // namespace aisio::nvme
