// The backends of this aisio binary: the CPU backends, plus the GPU backends when it is
// the CUDA build (decided at compile time, not by which command registered first).
#pragma once
#include "backends/registry.hpp"
#if defined(AISIO_HAVE_GPU)
#include "gpu/backends.hpp"
#endif

namespace aisio::tools {

inline const backends::Registry& tool_backends() {
#if defined(AISIO_HAVE_GPU)
  static const backends::Registry reg(gpu::backends());
#else
  static const backends::Registry reg;
#endif
  return reg;
}

}  // namespace aisio::tools
