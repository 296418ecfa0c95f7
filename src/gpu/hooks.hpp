// Installs the CUDA build's implementations behind the hooks of other layers:
// perf --mem gpu (perf/gpu_hook.hpp) and the fil GPU paths (fil/gpu_hook.hpp).
#pragma once

namespace aisio::gpu {
void install_hooks();
}
