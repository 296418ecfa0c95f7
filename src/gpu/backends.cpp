#include "gpu/backends.hpp"

#include "gpu/queues.hpp"

namespace aisio::gpu {

namespace {
class Cuda final : public backends::GpuBackends {
 public:
  std::shared_ptr<DmaHeap> data_heap(const std::shared_ptr<nvme::Controller>& ctrl) const override {
    return GpuController::open(ctrl)->data_heap();
  }
};
}  // namespace

std::shared_ptr<const backends::GpuBackends> backends() { return std::make_shared<Cuda>(); }

}  // namespace aisio::gpu
