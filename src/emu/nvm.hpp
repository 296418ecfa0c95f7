// The NVM command set: Read, Write, Compare, Flush, Write Zeroes, Dataset Management.
#pragma once
#include <cstdint>

#include "emu/core.hpp"
#include "emu/data_pointer.hpp"
#include "emu/outcome.hpp"
#include "emu/stats.hpp"
#include "spec/commands.hpp"

namespace aisio::emu {

// One per device thread, reused for every command.
struct IoContext {
  IoContext(Core& c, ThreadCounters& k) : core(c), counters(k) {}
  Core& core;
  ThreadCounters& counters;
  SegmentList segs;
  uint64_t bytes = 0;  // data moved by the last command (input to the device model)
};

// Runs inside the caller's DMA section.
Outcome execute_nvm(IoContext& ctx, const nvme::Sqe& cmd);

}  // namespace aisio::emu
