#include "gpu/command_list.hpp"

#include <fmt/format.h>

#include "common/error.hpp"
#include "gpu/cuda.hpp"
#include "gpu/kernels.hpp"
#include "nvme/controller.hpp"

namespace aisio::gpu {

using kern::ListParams;

CommandRunner::CommandRunner(QueueSet& qs, uint32_t threads) : qs_(qs), threads_(threads) {
  if (threads == 0 || threads + 1 > qs.depth() || threads > 1024)
    throw Error(Errc::invalid_argument,
                fmt::format("{} threads per queue do not fit queues of {} entries", threads, qs.depth()));
  auto& g = qs.gpu();
  const uint32_t page = g.ctrl().page_size();
  const size_t slots = size_t(qs.count()) * threads;
  lists_ = g.queue_heap()->alloc(slots * page, page);
  std::vector<uint64_t> bus(slots);
  for (size_t i = 0; i < slots; ++i) bus[i] = lists_.iova(i * page);
  AISIO_CUDA(cudaMalloc(&list_bus_dev_, slots * 8));
  AISIO_CUDA(cudaMemcpy(list_bus_dev_, bus.data(), slots * 8, cudaMemcpyHostToDevice));
  cudaStream_t s;
  AISIO_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  stream_ = s;
}

CommandRunner::~CommandRunner() {
  cudaFree(list_bus_dev_);
  cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
}

ListResult CommandRunner::run(uint8_t opc, uint32_t nsid, const std::vector<ListCommand>& cmds, const DmaBuffer& buf,
                              double timeout_ms) {
  ListResult r;
  r.status.assign(cmds.size(), 0xFFFFFFFFu);
  if (cmds.empty()) return r;
  auto& g = qs_.gpu();
  use_device(g.device());
  auto s = static_cast<cudaStream_t>(stream_);
  const uint32_t page = g.ctrl().page_size();
  if (page > kGpuPage) throw Error(Errc::not_supported, "controller memory pages larger than 64 KiB");
  for (const auto& c : cmds)
    if (c.dst + c.len > buf.size()) throw Error(Errc::invalid_argument, "command beyond the data buffer");
  auto table = bus_table(buf);
  kern::ListCommand* dcmds = nullptr;
  uint64_t* dtable = nullptr;
  uint32_t* dstatus = nullptr;
  unsigned int* dnext = nullptr;
  auto cleanup = [&] {
    cudaFree(dcmds);
    cudaFree(dtable);
    cudaFree(dstatus);
    cudaFree(dnext);
  };
  try {
    AISIO_CUDA(cudaMalloc(&dcmds, sizeof(ListCommand) * cmds.size()));
    AISIO_CUDA(cudaMalloc(&dtable, 8 * table.size()));
    AISIO_CUDA(cudaMalloc(&dstatus, 4 * cmds.size()));
    AISIO_CUDA(cudaMalloc(&dnext, sizeof(unsigned int)));
    AISIO_CUDA(cudaMemcpyAsync(dcmds, cmds.data(), sizeof(ListCommand) * cmds.size(), cudaMemcpyHostToDevice, s));
    AISIO_CUDA(cudaMemcpyAsync(dtable, table.data(), 8 * table.size(), cudaMemcpyHostToDevice, s));
    AISIO_CUDA(cudaMemsetAsync(dstatus, 0xFF, 4 * cmds.size(), s));
    AISIO_CUDA(cudaMemsetAsync(dnext, 0, sizeof(unsigned int), s));
    auto before = qs_.read_states();
    DeviceInfo di = device_info(g.device());
    ListParams p{};
    p.queues = qs_.views();
    p.cmds = dcmds;
    p.n = uint32_t(cmds.size());
    p.nsid = nsid;
    p.opc = opc;
    p.mps_shift = uint32_t(__builtin_ctz(page));
    p.table = dtable;
    p.lists = static_cast<uint64_t*>(g.device_ptr(lists_));
    p.list_bus = list_bus_dev_;
    p.next = dnext;
    p.status = dstatus;
    p.poll.timeout_cycles = (long long)(timeout_ms * di.clock_khz);
    cudaEvent_t e0, e1;
    AISIO_CUDA(cudaEventCreate(&e0));
    AISIO_CUDA(cudaEventCreate(&e1));
    AISIO_CUDA(cudaEventRecord(e0, s));
    AISIO_CUDA(kern::launch_list(p, qs_.count(), threads_, s));
    AISIO_CUDA(cudaEventRecord(e1, s));
    AISIO_CUDA(cudaStreamSynchronize(s));
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    r.seconds = ms * 1e-3;
    AISIO_CUDA(cudaMemcpy(r.status.data(), dstatus, 4 * cmds.size(), cudaMemcpyDeviceToHost));
    auto after = qs_.read_states();
    for (size_t i = 0; i < after.size(); ++i) {
      r.timeouts += after[i].timeouts - before[i].timeouts;
      r.spurious += after[i].spurious - before[i].spurious;
    }
  } catch (...) {
    cleanup();
    throw;
  }
  cleanup();
  for (size_t i = 0; i < r.status.size(); ++i) {
    if (r.status[i] == st::kOk) continue;
    if (r.failed++ == 0) {
      r.first_failed = i;
      r.first_status = r.status[i];
    }
  }
  return r;
}

}  // namespace aisio::gpu
