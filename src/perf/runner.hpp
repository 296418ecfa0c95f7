// Running a benchmark: open the targets, create one worker per thread (each owning one
// queue per device), move them through ramp -> measure -> stop, collect the results.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "nvme/controller.hpp"
#include "perf/options.hpp"
#include "perf/result.hpp"
#include "target/target.hpp"

namespace aisio::backends {
class Registry;
}

namespace aisio::perf {

struct ProgressInfo {
  bool ramp = false;
  double elapsed_s = 0;  // since I/O started
  double total_s = 0;    // ramp + runtime (0 for --ios runs)
  double iops = 0;       // over the last interval
  double bytes_per_s = 0;
  uint64_t ios = 0;      // completions so far
};

struct RunHooks {
  // Opens a controller handle; empty: target::open. Tests open their own to inject faults.
  std::function<std::shared_ptr<target::Target>(const std::string& handle)> open;
  // The backends of this build (nullptr: the CPU backends only).
  const backends::Registry* backends = nullptr;
  // Called about once a second while the run lasts.
  std::function<void(const ProgressInfo&)> progress;
};

// Runs the benchmark. Setup problems throw aisio::Error; I/O errors end the run early
// and are reported in the result (ThreadResult::errors, first_error).
RunResult run(const PerfOptions& o, const RunHooks& hooks = {});

}  // namespace aisio::perf
