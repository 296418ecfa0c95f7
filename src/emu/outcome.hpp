// What executing one command produced: completion dword 0 and the status field.
#pragma once
#include <cstdint>

#include "spec/status.hpp"

namespace aisio::emu {

struct Outcome {
  uint32_t dw0 = 0;
  nvme::Status status{};
  bool deferred = false;  // no completion now (Asynchronous Event Request)
};

// Validation failures will fail again on retry: Do Not Retry set.
constexpr nvme::Status generic_error(uint8_t sc) { return nvme::Status::make(nvme::sct::GENERIC, sc, true); }
constexpr nvme::Status specific_error(uint8_t sc) {
  return nvme::Status::make(nvme::sct::COMMAND_SPECIFIC, sc, true);
}
// A command refused with a generic or command-specific status.
constexpr Outcome fail(uint8_t sc) { return Outcome{0, generic_error(sc)}; }
constexpr Outcome fail_specific(uint8_t sc) { return Outcome{0, specific_error(sc)}; }
// A DMA that could not reach host memory may succeed once the host fixes its mapping.
constexpr nvme::Status transfer_error() {
  return nvme::Status::make(nvme::sct::GENERIC, nvme::sc::DATA_TRANSFER_ERROR, false);
}

}  // namespace aisio::emu
