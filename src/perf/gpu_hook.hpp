// --mem gpu: data buffers in GPU memory. The CUDA build (src/gpu, installed by the
// aisio tool at start-up) provides the heap; without it --mem gpu is refused.
#pragma once
#include <memory>

#include "memory/dma.hpp"

namespace aisio::nvme {
class Controller;
}

namespace aisio::perf {

// A DMA heap of GPU memory that `ctrl` can reach (throws aisio::Error with the reason).
using GpuHeapFactory = std::shared_ptr<DmaHeap> (*)(const std::shared_ptr<nvme::Controller>& ctrl);
void set_gpu_heap_factory(GpuHeapFactory f);
GpuHeapFactory gpu_heap_factory();  // nullptr: not a CUDA build

}  // namespace aisio::perf
