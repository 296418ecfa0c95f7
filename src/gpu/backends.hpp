// The CUDA build's contribution to the backends Registry (backends/registry.hpp):
//   Registry reg(gpu::backends());
#pragma once
#include <memory>

#include "backends/registry.hpp"

namespace aisio::gpu {

std::shared_ptr<const backends::GpuBackends> backends();

}  // namespace aisio::gpu
