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
  list_bus_dev_ = dev_alloc<uint64_t>(slots);
  AISIO_CUDA(cudaMemcpy(list_bus_dev_.get(), bus.data(), slots * 8, cudaMemcpyHostToDevice));
  AISIO_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

CommandRunner::~CommandRunner() { cudaStreamDestroy(stream_); }

ListResult CommandRunner::run(uint8_t opc, uint32_t nsid, const std::vector<ListCommand>& cmds, const DmaBuffer& buf,
                              double timeout_ms) {
  ListResult r;
  r.status.assign(cmds.size(), 0xFFFFFFFFu);
  if (cmds.empty()) return r;
  auto& g = qs_.gpu();
  use_device(g.device());
  cudaStream_t s = stream_;
  const uint32_t page = g.ctrl().page_size();
  if (page > kGpuPage) throw Error(Errc::not_supported, "controller memory pages larger than 64 KiB");
  for (const auto& c : cmds)
    if (c.dst + c.len > buf.size()) throw Error(Errc::invalid_argument, "command beyond the data buffer");
  auto table = bus_table(buf);
  // Device copies of the list and the bus table, the statuses and the next-command counter.
  auto dcmds = dev_alloc<ListCommand>(cmds.size());
  auto dtable = dev_alloc<uint64_t>(table.size());
  auto dstatus = dev_alloc<uint32_t>(cmds.size());
  auto dnext = dev_alloc<unsigned int>(1);
  AISIO_CUDA(cudaMemcpyAsync(dcmds.get(), cmds.data(), sizeof(ListCommand) * cmds.size(), cudaMemcpyHostToDevice, s));
  AISIO_CUDA(cudaMemcpyAsync(dtable.get(), table.data(), 8 * table.size(), cudaMemcpyHostToDevice, s));
  AISIO_CUDA(cudaMemsetAsync(dstatus.get(), 0xFF, 4 * cmds.size(), s));
  AISIO_CUDA(cudaMemsetAsync(dnext.get(), 0, sizeof(unsigned int), s));
  auto before = qs_.read_states();
  DeviceInfo di = device_info(g.device());
  ListParams p{};
  p.queues = qs_.views();
  p.cmds = dcmds.get();
  p.n = uint32_t(cmds.size());
  p.nsid = nsid;
  p.opc = opc;
  p.mps_shift = uint32_t(__builtin_ctz(page));
  p.table = dtable.get();
  p.lists = static_cast<uint64_t*>(g.device_ptr(lists_));
  p.list_bus = list_bus_dev_.get();
  p.next = dnext.get();
  p.status = dstatus.get();
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
  AISIO_CUDA(cudaMemcpy(r.status.data(), dstatus.get(), 4 * cmds.size(), cudaMemcpyDeviceToHost));
  auto after = qs_.read_states();
  for (size_t i = 0; i < after.size(); ++i) {
    r.timeouts += after[i].timeouts - before[i].timeouts;
    r.spurious += after[i].spurious - before[i].spurious;
  }
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
