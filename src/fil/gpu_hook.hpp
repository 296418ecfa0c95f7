// The GPU paths of `aisio fil run` (unvme-gpu, gpu, cufile): implemented by the CUDA
// build (src/gpu), which installs the runner at start-up; without it the paths are
// reported as not built.
#pragma once
#include <string>

#include "fil/run.hpp"

namespace aisio::fil {

class Session;

// Reads every file of the session's manifest through GPU path `name` into GPU memory
// and verifies every byte on the GPU. Never throws for a path that cannot run here:
// PathResult::skipped says why.
using GpuPathRunner = PathResult (*)(Session& s, const std::string& name, const RunOptions& o);
void set_gpu_path_runner(GpuPathRunner r);
GpuPathRunner gpu_path_runner();  // nullptr: not a CUDA build
bool is_gpu_path(const std::string& name);  // unvme-gpu, gpu, cufile

}  // namespace aisio::fil
