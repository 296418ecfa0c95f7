// The GPU paths against the software controller: GPU memory with bus addresses,
// CPU-initiated P2P, device-initiated I/O (data written by one path read by the other,
// verified), NVMe status and timeouts returned to GPU threads, the GPU-resident null
// controller, and a cuda-run stress with the controllers' own counts as cross-check.
//
// Without a CUDA device (CI) every test skips with the reason.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>

#include "common/error.hpp"
#include "emu/controller.hpp"
#include "gpu/command_list.hpp"
#include "gpu/cuda.hpp"
#include "gpu/cuda_run.hpp"
#include "gpu/memory.hpp"
#include "gpu/queues.hpp"
#include "nvme/controller.hpp"
#include "p2p/choose.hpp"
#include "pcie/fake_sysfs.hpp"

using namespace aisio;
using namespace aisio::gpu;

namespace {

class Gpu : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!device_present(&why)) GTEST_SKIP() << "GPU test skipped: " << why;
  }
};

struct Rig {
  explicit Rig(uint32_t lba = 512, uint64_t bytes = 256ull << 20) {
    emu::EmuConfig c;
    c.namespaces = {emu::NamespaceConfig{bytes, lba, emu::Backing::ram, ""}};
    dev = std::make_shared<emu::SoftController>(c);
    dev->start();
    ctrl = nvme::Controller::create(dev->bar0("emu:gpu-test"), dev->dma());
    g = GpuController::open(ctrl);
  }
  ~Rig() {
    g.reset();
    ctrl.reset();
    dev->stop();
  }
  std::shared_ptr<emu::SoftController> dev;
  std::shared_ptr<nvme::Controller> ctrl;
  std::shared_ptr<GpuController> g;
};

void fill_random(uint8_t* p, size_t n, uint64_t seed) {
  std::mt19937_64 r(seed);
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = r();
    std::memcpy(p + i, &v, std::min<size_t>(8, n - i));
  }
}

std::vector<uint8_t> download(const DmaBuffer& b, size_t off, size_t n) {
  std::vector<uint8_t> v(n);
  AISIO_CUDA(cudaMemcpy(v.data(), b.data() + off, n, cudaMemcpyDeviceToHost));
  return v;
}

// A command list of mixed sizes (1 LBA .. 128 KiB) over consecutive LBAs, the data at
// consecutive offsets of the buffer, some of them not page aligned (PRP1 offsets).
std::vector<ListCommand> mixed_commands(uint64_t slba0, uint32_t lba, size_t& bytes) {
  const uint32_t nlbs[] = {1, 8, 9, 16, 64, 256, 3, 128, 255, 2};
  std::vector<ListCommand> v;
  uint64_t slba = slba0, dst = 0;
  for (int rep = 0; rep < 20; ++rep)
    for (uint32_t n : nlbs) {
      uint32_t nlb = std::min<uint32_t>(n, (128u << 10) / lba);
      v.push_back({slba, nlb, nlb * lba, dst});
      slba += nlb;
      dst += uint64_t(nlb) * lba;
    }
  bytes = dst;
  return v;
}

}  // namespace

TEST_F(Gpu, HeapHasBusTableAt64KiB) {
  Rig r;
  auto heap = r.g->data_heap();
  DmaBuffer a = heap->alloc(3 << 20, kGpuPage);
  DmaBuffer b = heap->alloc(100 << 10, 4096);
  EXPECT_TRUE(is_gpu_memory(a.data()));
  // The table is at 64 KiB granularity and iova() adds the offset inside a page.
  auto t = bus_table(a);
  ASSERT_EQ(t.size(), size_t(48));
  for (size_t i = 0; i < t.size(); ++i) EXPECT_EQ(t[i], a.iova(i << 16));
  EXPECT_EQ(a.iova(65536 + 123), t[1] + 123);
  EXPECT_EQ(a.contiguous_from(100), kGpuPage - 100);
  // Zero-filled on allocation (through cudaMemset, not memset of device memory).
  auto z = download(b, 0, b.size());
  EXPECT_TRUE(std::all_of(z.begin(), z.end(), [](uint8_t x) { return x == 0; }));
  auto& be = dynamic_cast<GpuDmaBackend&>(heap->backend());
  DeviceInfo di = device_info(0);
  if (di.dmabuf) {
    EXPECT_GE(be.stats().dmabuf_exports, 1u) << be.stats().dmabuf_error;
  }
  std::printf("gpu: %s\nheap: %s, %llu chunk(s), dma-buf exports %llu %s\n", describe(di).c_str(), heap->name().c_str(),
              (unsigned long long)be.stats().chunks, (unsigned long long)be.stats().dmabuf_exports,
              be.stats().dmabuf_error.c_str());
}

// Where the GPU peer-to-peer kernel modules are missing (the device machines), GPU memory
// for a PCIe controller is refused with the nodes and packages named. The real /dev and
// system calls; a fake /sys for a uio-bound function. Needs no GPU (runs in CI too).
TEST(GpuP2p, MissingModulesAreReportedClearly) {
  p2p::Environment env;
  for (const auto& node : {env.dmabuf_import_node, env.iommu_map_pa_node})
    if (env.io->exists(node)) GTEST_SKIP() << node << " is present on this machine";
  test::FakeSysfs sys;
  sys.add({.bdf = "0000:01:00.0", .driver = "uio_pci_generic"});
  env.sys = pcie::Sysfs(sys.root());
  try {
    p2p::make_resolver({"0000:01:00.0", pcie::Driver::uio_pci_generic, nullptr}, env);
    FAIL() << "a resolver without the modules";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_EQ(e.code(), Errc::not_supported);
    for (const char* part : {"/dev/dmabuf_import", "/dev/iommu_map_pa", "dmabuf-import-dkms", "iommu-map-pa-dkms"})
      EXPECT_NE(m.find(part), std::string::npos) << m;
    std::printf("resolver on this machine: %s\n", m.c_str());
  }
}

// CPU-initiated P2P: the driver's own PRP building on GPU memory.
TEST_F(Gpu, CpuInitiatedP2P) {
  Rig r;
  auto host = r.ctrl->dma()->alloc(1 << 20);
  fill_random(host.data(), host.size(), 11);
  DmaBuffer gbuf = r.g->data_heap()->alloc(1 << 20, kGpuPage);
  auto qp = r.ctrl->create_queue_pair({.depth = 64});
  // Host -> media, media -> GPU (several sizes, PRP lists included), GPU -> media, media -> host.
  ASSERT_TRUE(qp->write(1, 0, 2048, host).ok());
  for (uint32_t nlb : {1u, 8u, 16u, 255u, 256u}) {
    auto c = qp->read(1, 0, nlb, gbuf, 4096);
    ASSERT_TRUE(c.ok()) << c.describe();
    auto got = download(gbuf, 4096, size_t(nlb) * 512);
    ASSERT_EQ(0, std::memcmp(got.data(), host.data(), got.size())) << "nlb " << nlb;
  }
  ASSERT_TRUE(qp->read(1, 0, 2048, gbuf).ok());
  ASSERT_TRUE(qp->write(1, 4096, 2048, gbuf).ok());
  auto back = r.ctrl->dma()->alloc(1 << 20);
  ASSERT_TRUE(qp->read(1, 4096, 2048, back).ok());
  EXPECT_EQ(0, std::memcmp(back.data(), host.data(), host.size()));
}

// Data written by the CPU path is read by the GPU path, and the reverse, verified.
TEST_F(Gpu, CpuWritesGpuReadsAndGpuWritesCpuReads) {
  Rig r;
  size_t bytes = 0;
  auto cmds = mixed_commands(1000, 512, bytes);
  auto host = r.ctrl->dma()->alloc(bytes);
  fill_random(host.data(), bytes, 42);
  auto qp = r.ctrl->create_queue_pair({.depth = 64});
  for (size_t off = 0; off < bytes; off += 64 << 10) {
    uint32_t nlb = uint32_t(std::min<size_t>(64 << 10, bytes - off) / 512);
    ASSERT_TRUE(qp->write(1, 1000 + off / 512, nlb, host, off).ok());
  }
  QueueSet qs(r.g, {4, 33});
  CommandRunner run(qs, 32);
  DmaBuffer gbuf = r.g->data_heap()->alloc(bytes + 4096, kGpuPage);
  AISIO_CUDA(cudaMemset(gbuf.data(), 0x5A, gbuf.size()));
  auto res = run.run(0x02, 1, cmds, gbuf);
  ASSERT_EQ(res.failed, 0u) << status_text(res.first_status) << " at command " << res.first_failed;
  auto got = download(gbuf, 0, bytes);
  ASSERT_EQ(0, std::memcmp(got.data(), host.data(), bytes)) << "GPU read differs from what the CPU wrote";
  std::printf("GPU read %zu commands, %zu bytes in %.3f ms\n", cmds.size(), bytes, res.seconds * 1e3);

  // GPU writes (new data, at other LBAs and an unaligned buffer offset), CPU reads back.
  std::vector<uint8_t> pattern(bytes);
  fill_random(pattern.data(), bytes, 7);
  AISIO_CUDA(cudaMemcpy(gbuf.data() + 4, pattern.data(), bytes, cudaMemcpyHostToDevice));
  auto wcmds = mixed_commands(200000, 512, bytes);
  for (auto& c : wcmds) c.dst += 4;  // dword offset: PRP1 with an offset, later entries page aligned
  res = run.run(0x01, 1, wcmds, gbuf);
  ASSERT_EQ(res.failed, 0u) << status_text(res.first_status);
  auto back = r.ctrl->dma()->alloc(bytes);
  for (size_t off = 0; off < bytes; off += 64 << 10) {
    uint32_t nlb = uint32_t(std::min<size_t>(64 << 10, bytes - off) / 512);
    ASSERT_TRUE(qp->read(1, 200000 + off / 512, nlb, back, off).ok());
  }
  EXPECT_EQ(0, std::memcmp(back.data(), pattern.data(), bytes)) << "CPU read differs from what the GPU wrote";
  auto s = qs.read_states();
  for (auto& q : s) {
    EXPECT_EQ(q.timeouts, 0u);
    EXPECT_EQ(q.spurious, 0u);
    EXPECT_EQ(q.submitted, q.completed);
  }
}

// NVMe errors come back to the GPU thread as the controller's status.
TEST_F(Gpu, NvmeStatusReturnedToThread) {
  Rig r(512, 16ull << 20);
  QueueSet qs(r.g, {1, 9});
  CommandRunner run(qs, 8);
  DmaBuffer gbuf = r.g->data_heap()->alloc(1 << 20, kGpuPage);
  const uint64_t nsze = r.ctrl->ns(1).nsze;
  std::vector<ListCommand> cmds = {{0, 8, 4096, 0}, {nsze - 1, 8, 4096, 8192}, {8, 8, 4096, 16384}};
  auto res = run.run(0x02, 1, cmds, gbuf);
  EXPECT_EQ(res.status[0], st::kOk);
  EXPECT_EQ(st::sc(res.status[1]), 0x80u) << status_text(res.status[1]);  // LBA Out of Range
  EXPECT_EQ(st::sct(res.status[1]), 0u);
  EXPECT_EQ(res.status[2], st::kOk);
  auto bad_ns = run.run(0x02, 7, {{0, 1, 512, 0}}, gbuf);
  EXPECT_EQ(st::sc(bad_ns.status[0]), 0x0Bu) << status_text(bad_ns.status[0]);  // Invalid Namespace or Format
}

// A stopped controller yields a timeout status, not a hang; the queue is then recreated.
TEST_F(Gpu, FrozenControllerTimesOut) {
  Rig r;
  QueueSet qs(r.g, {2, 17});
  CommandRunner run(qs, 16);
  DmaBuffer gbuf = r.g->data_heap()->alloc(1 << 20, kGpuPage);
  std::vector<ListCommand> cmds;
  for (uint32_t i = 0; i < 40; ++i) cmds.push_back({i * 8ull, 8, 4096, i * 4096ull});
  r.dev->faults().freeze();
  auto t0 = std::chrono::steady_clock::now();
  auto res = run.run(0x02, 1, cmds, gbuf, /*timeout_ms*/ 100);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.dev->faults().resume();
  EXPECT_LT(secs, 5.0);
  EXPECT_GE(res.timeouts, 1u);
  uint64_t timeouts = 0, never = 0;
  for (auto s : res.status) {
    EXPECT_NE(s, st::kOk);
    timeouts += s == st::kTimeout;
    never += s == st::kNeverRun;
  }
  EXPECT_GE(timeouts, 1u);
  EXPECT_EQ(timeouts + never, cmds.size());
  for (auto& s : qs.read_states()) EXPECT_EQ(s.broken, 1u);
  // The controller answers again (it completes what it had fetched meanwhile); recreate
  // the queues and the same commands succeed.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (uint32_t q = 0; q < qs.count(); ++q) qs.recreate(q);
  res = run.run(0x02, 1, cmds, gbuf, 5000);
  EXPECT_EQ(res.failed, 0u) << status_text(res.first_status);
}

TEST_F(Gpu, NullGpuControllerCeiling) {
  CudaRunOptions o;
  o.null_gpu = 8;
  o.qd = 128;
  o.runtime_s = 0.5;
  auto r = cuda_run(o);
  EXPECT_EQ(r.errors, 0u);
  EXPECT_EQ(r.timeouts, 0u);
  EXPECT_EQ(r.spurious, 0u);
  EXPECT_TRUE(r.controller_counts_match);
  EXPECT_GT(r.ios, 0u);
  std::printf("%s", to_text(r).c_str());
}

// cuda-run over `devices` software controllers of 1 GiB each.
CudaRunOptions emu_run(uint32_t devices, uint32_t queues, uint32_t qd, uint32_t bs, double runtime_s) {
  CudaRunOptions o;
  o.emu.devices = devices;
  o.emu.ns_bytes = 1ull << 30;
  o.queues = queues;
  o.qd = qd;
  o.bs = bs;
  o.runtime_s = runtime_s;
  return o;
}

// Every command the GPU submitted was executed exactly once by its software controller
// (the controller's own counter), and together they are the run's I/Os.
void expect_counts_add_up(const CudaRunResult& r) {
  EXPECT_TRUE(r.controller_counts_checked);
  EXPECT_TRUE(r.controller_counts_match);
  uint64_t sum = 0;
  for (auto& [gpu, ctrl] : r.per_device_counts) {
    EXPECT_EQ(gpu, ctrl);
    sum += gpu;
  }
  EXPECT_EQ(sum, r.ios);
}

// Many threads over many software controllers; every command the GPU submitted was
// executed exactly once by a controller (its own counter), none timed out or repeated.
TEST_F(Gpu, CudaRunStressNoLostOrDuplicatedCompletions) {
  const char* env = std::getenv("AISIO_GPU_STRESS_S");
  CudaRunOptions o = emu_run(16, 1, 64, 512, env ? std::atof(env) : 2.0);  // 16 x 64 = 1024 threads
  auto r = cuda_run(o);
  std::printf("%s", to_text(r).c_str());
  EXPECT_EQ(r.threads, 1024u);
  EXPECT_EQ(r.errors, 0u) << r.first_error_text;
  EXPECT_EQ(r.timeouts, 0u);
  EXPECT_EQ(r.spurious, 0u);
  expect_counts_add_up(r);
}

// Several GPUs with the list [0, 0]: two GPU slots on one GPU, each its own queue pairs
// on both controllers, its own buffers and kernel. Every queue does I/O, no queue id is
// shared between the slots, and the controllers executed exactly what the two kernels
// submitted together.
TEST_F(Gpu, CudaRunGpuSlotsEachOwnTheirQueues) {
  CudaRunOptions o = emu_run(2, 2, 32, 4096, 0.5);
  o.gpus = {0, 0};
  auto r = cuda_run(o);
  std::printf("%s", to_text(r).c_str());
  ASSERT_EQ(r.queues.size(), 8u);  // 2 slots x 2 controllers x 2 queues
  EXPECT_EQ(r.threads, 8u * 32u);
  std::set<std::pair<std::string, uint16_t>> ids;
  for (auto& q : r.queues) {
    EXPECT_GT(q.ios, 0u) << q.device << " qid " << q.qid;
    EXPECT_EQ(q.gpu, 0);
    ids.insert({q.device, q.qid});
  }
  EXPECT_EQ(ids.size(), 8u) << "a queue id served two slots";
  EXPECT_EQ(r.errors, 0u) << r.first_error_text;
  EXPECT_EQ(r.timeouts, 0u);
  EXPECT_EQ(r.per_device_counts.size(), 2u);
  expect_counts_add_up(r);
  auto j = to_json(r);
  EXPECT_EQ(j["options"]["gpus"], nlohmann::json::array({0, 0}));
}
