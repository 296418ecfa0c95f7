#include "gpu/queues.hpp"

#include <fmt/format.h>

#include <cstring>

#include "common/error.hpp"
#include "emu/register_file.hpp"
#include "gpu/cuda.hpp"
#include "nvme/controller.hpp"

namespace aisio::gpu {

namespace {
std::mutex g_registry_mu;
// One GpuController per (controller, CUDA device): each GPU its own heaps and queues.
using Key = std::pair<const nvme::Controller*, int>;
std::map<Key, std::weak_ptr<GpuController>>& registry() {
  static std::map<Key, std::weak_ptr<GpuController>> r;
  return r;
}
// BAR0 is registered with CUDA once per process (cudaHostRegisterPortable: every device
// sees it), however many GPUs ring its doorbells; the last user unregisters it.
std::map<void*, int>& bar_users() {
  static std::map<void*, int> m;
  return m;
}
cudaError_t register_bar(void* base, size_t size, unsigned flags) {
  std::lock_guard lk(g_registry_mu);
  int& n = bar_users()[base];
  if (n == 0) {
    cudaError_t e = cudaHostRegister(base, size, flags);
    if (e != cudaSuccess) {
      bar_users().erase(base);
      return e;
    }
  }
  ++n;
  return cudaSuccess;
}
void unregister_bar(void* base) {
  std::lock_guard lk(g_registry_mu);
  auto it = bar_users().find(base);
  if (it == bar_users().end() || --it->second > 0) return;
  bar_users().erase(it);
  cudaHostUnregister(base);
}
}  // namespace

std::shared_ptr<GpuController> GpuController::open(std::shared_ptr<nvme::Controller> ctrl, int cuda_device) {
  if (!ctrl) throw Error(Errc::invalid_argument, "GpuController::open: no controller");
  std::lock_guard lk(g_registry_mu);
  auto& r = registry();
  const Key key{ctrl.get(), cuda_device};
  if (auto g = r[key].lock()) return g;
  std::shared_ptr<GpuController> g(new GpuController(ctrl, cuda_device));
  r[key] = g;
  return g;
}

GpuController::GpuController(std::shared_ptr<nvme::Controller> c, int dev)
    : ctrl_(std::move(c)), device_(dev), software_(emu::dma_space_of(ctrl_->bar0()) != nullptr) {
  use_device(device_);
  // Fail here, with the reason, when this controller cannot reach GPU memory at all.
  resolver_for(*ctrl_, device_);
}

GpuController::~GpuController() {
  {
    std::lock_guard lk(g_registry_mu);
    auto it = registry().find(Key{ctrl_.get(), device_});
    if (it != registry().end() && it->second.expired()) registry().erase(it);
  }
  if (bar_registered_) unregister_bar(ctrl_->bar0().base());
}

const std::shared_ptr<DmaHeap>& GpuController::data_heap() {
  std::lock_guard lk(mu_);
  if (!data_) data_ = make_gpu_heap(*ctrl_, device_, 16u << 20);
  return data_;
}

const std::shared_ptr<DmaHeap>& GpuController::queue_heap() {
  if (!software_) return data_heap();  // PCIe: queues in GPU memory, reached like the data
  std::lock_guard lk(mu_);
  if (!queues_) queues_ = DmaHeap::create(std::make_unique<PinnedEmuBackend>(emu::dma_space_of(ctrl_->bar0())), 4u << 20);
  return queues_;
}

uint32_t* GpuController::doorbell(uint32_t offset) {
  std::lock_guard lk(mu_);
  MmioWindow& bar = ctrl_->bar0();
  if (!bar_registered_) {
    use_device(device_);
    // Software controller: its register page is ordinary shared memory. PCIe: BAR0 is
    // I/O memory; the GPU's stores to it become MMIO writes on the bus.
    unsigned flags = software_ ? (cudaHostRegisterMapped | cudaHostRegisterPortable)
                               : (cudaHostRegisterIoMemory | cudaHostRegisterMapped | cudaHostRegisterPortable);
    cudaError_t e = register_bar(bar.base(), bar.size(), flags);
    if (e != cudaSuccess)
      throw Error(Errc::not_supported,
                  fmt::format("cudaHostRegister({}) of {} ({} bytes): {} ({}){}", software_ ? "Mapped" : "IoMemory",
                              bar.describe(), bar.size(), cudaGetErrorName(e), cudaGetErrorString(e),
                              software_ ? "" : "; BAR0 must be mapped through vfio or uio resource0"));
    bar_registered_ = true;
    void* d = nullptr;
    AISIO_CUDA(cudaHostGetDevicePointer(&d, bar.base(), 0));
    bar_dev_ = static_cast<uint8_t*>(d);
  }
  if (offset + 4 > bar.size()) throw Error(Errc::invalid_argument, "doorbell offset outside BAR0");
  return reinterpret_cast<uint32_t*>(bar_dev_ + offset);
}

void* GpuController::device_ptr(const DmaBuffer& b, size_t off) const {
  if (queues_in_gpu_memory() || is_gpu_memory(b.data())) return b.data() + off;
  void* d = nullptr;
  AISIO_CUDA(cudaHostGetDevicePointer(&d, b.data(), 0));
  return static_cast<uint8_t*>(d) + off;
}

void GpuController::upload(const DmaBuffer& dst, size_t off, const void* src, size_t n) const {
  if (off + n > dst.size()) throw Error(Errc::invalid_argument, "upload beyond the buffer");
  if (is_gpu_memory(dst.data())) {
    AISIO_CUDA(cudaMemcpy(dst.data() + off, src, n, cudaMemcpyHostToDevice));
  } else {
    std::memcpy(dst.data() + off, src, n);
  }
}

std::string GpuController::describe() const {
  return fmt::format("{}: {} queues, doorbells via {}", ctrl_->describe(),
                     software_ ? "host-pinned (cudaHostAlloc)" : "GPU-memory",
                     software_ ? "cudaHostRegister(Mapped) of the register page" : "cudaHostRegisterIoMemory of BAR0");
}

// ---- QueueSet -------------------------------------------------------------------------------

QueueSet::QueueSet(std::shared_ptr<GpuController> g, const QueueSetOptions& o) : g_(std::move(g)), opt_(o) {
  auto& ctrl = g_->ctrl();
  uint32_t max_depth = uint32_t(ctrl.cap().mqes()) + 1;
  if (o.depth < 2 || o.depth > max_depth)
    throw Error(Errc::invalid_argument,
                fmt::format("{}: queue depth {} outside 2..{} (CAP.MQES)", ctrl.describe(), o.depth, max_depth));
  if (o.count == 0) throw Error(Errc::invalid_argument, "QueueSet of 0 queues");
  use_device(g_->device());
  views_dev_ = dev_alloc<QueueView>(o.count);
  states_dev_ = dev_alloc<QueueState>(o.count);
  q_.resize(o.count);
  views_.resize(o.count);
  try {
    for (uint32_t i = 0; i < o.count; ++i) create(i);
  } catch (...) {
    release();  // the destructor does not run for a constructor that throws
    throw;
  }
  AISIO_CUDA(cudaMemcpy(views_dev_.get(), views_.data(), sizeof(QueueView) * o.count, cudaMemcpyHostToDevice));
}

void QueueSet::create(uint32_t i) {
  auto& heap = *g_->queue_heap();
  Q& q = q_[i];
  // One GPU page (64 KiB) holds a whole SQ of up to 1024 entries: physically contiguous.
  if (!q.sq) q.sq = heap.alloc(size_t(opt_.depth) * sizeof(Sqe64), kGpuPage);
  if (!q.cq) q.cq = heap.alloc(size_t(opt_.depth) * sizeof(Cqe16), kGpuPage);
  q.qid = g_->ctrl().create_io_queue_at(opt_.depth, q.sq.iova(), q.cq.iova());
  QueueView v{};
  v.sq = static_cast<Sqe64*>(g_->device_ptr(q.sq));
  v.cq = static_cast<Cqe16*>(g_->device_ptr(q.cq));
  v.sq_db = g_->doorbell(g_->ctrl().sq_doorbell_offset(q.qid));
  v.cq_db = g_->doorbell(g_->ctrl().cq_doorbell_offset(q.qid));
  v.state = states_dev_.get() + i;
  v.depth = opt_.depth;
  v.qid = q.qid;
  views_[i] = v;
  QueueState s{};
  AISIO_CUDA(cudaMemcpy(states_dev_.get() + i, &s, sizeof s, cudaMemcpyHostToDevice));
}

void QueueSet::recreate(uint32_t i) {
  Q& q = q_[i];
  if (q.qid) g_->ctrl().delete_io_queue_at(q.qid);
  q.qid = 0;
  std::vector<uint8_t> zero(std::max(q.sq.size(), q.cq.size()), 0);
  g_->upload(q.sq, 0, zero.data(), q.sq.size());
  g_->upload(q.cq, 0, zero.data(), q.cq.size());
  create(i);
  AISIO_CUDA(cudaMemcpy(views_dev_.get() + i, &views_[i], sizeof(QueueView), cudaMemcpyHostToDevice));
}

std::vector<QueueState> QueueSet::read_states() const {
  std::vector<QueueState> s(q_.size());
  AISIO_CUDA(cudaMemcpy(s.data(), states_dev_.get(), sizeof(QueueState) * s.size(), cudaMemcpyDeviceToHost));
  return s;
}

QueueSet::~QueueSet() { release(); }

void QueueSet::release() noexcept {
  for (auto& q : q_) {
    if (!q.qid) continue;
    try {
      g_->ctrl().delete_io_queue_at(q.qid);
    } catch (const std::exception& e) {
      fmt::print(stderr, "aisio gpu: deleting I/O queue {} of {}: {}\n", q.qid, g_->ctrl().describe(), e.what());
    }
  }
}

// ---- PRPs per slot ---------------------------------------------------------------------------

void slot_prp(const GpuController& g, const DmaBuffer& data, size_t off, size_t len, const DmaBuffer& lists,
              size_t list_off, uint64_t& prp1, uint64_t& prp2) {
  const uint32_t page = g.ctrl().page_size();
  prp1 = data.iova(off);
  if (prp1 & 3) throw Error(Errc::invalid_argument, "PRP1 not dword aligned");
  size_t first = page - (prp1 & (page - 1));
  if (len <= first) {
    prp2 = 0;
    return;
  }
  if (len <= first + page) {
    prp2 = data.iova(off + first);
    return;
  }
  size_t n = (len - first + page - 1) / page;
  if (n > page / 8) throw Error(Errc::invalid_argument, "I/O larger than one PRP list page covers");
  std::vector<uint64_t> e(n);
  for (size_t i = 0; i < n; ++i) e[i] = data.iova(off + first + i * page);
  g.upload(lists, list_off, e.data(), n * 8);
  prp2 = lists.iova(list_off);
}

}  // namespace aisio::gpu
