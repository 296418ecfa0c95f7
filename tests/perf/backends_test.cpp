// The backends Registry: the plug point through which the GPU backends arrive (no global
// hooks, no registration order). A fake GpuBackends hands out the controller's own host
// DMA memory and counts the calls, which shows that `--mem gpu` takes its data buffers
// from the registered backend and is refused without one.
#include <gtest/gtest.h>

#include "backends/registry.hpp"
#include "common/error.hpp"
#include "nvme/controller.hpp"
#include "perf/runner.hpp"

namespace aisio::perf {
namespace {

class FakeGpu final : public backends::GpuBackends {
 public:
  std::shared_ptr<DmaHeap> data_heap(const std::shared_ptr<nvme::Controller>& ctrl) const override {
    ++calls;
    return ctrl->dma();
  }
  mutable int calls = 0;
};

TEST(Backends, GpuPathsAreBuiltOnlyWithAGpuBackend) {
  const backends::Registry cpu;
  EXPECT_EQ(cpu.gpu(), nullptr);
  ASSERT_NE(cpu.find_file_path("posix"), nullptr);
  EXPECT_TRUE(cpu.find_file_path("posix")->built);
  auto fake = std::make_shared<FakeGpu>();
  const backends::Registry with(fake);
  EXPECT_EQ(with.gpu(), fake.get());
  for (const char* n : {"unvme-gpu", "gpu", "cufile"}) {
    ASSERT_NE(cpu.find_file_path(n), nullptr) << n;
    EXPECT_TRUE(cpu.find_file_path(n)->gpu) << n;
    EXPECT_FALSE(cpu.find_file_path(n)->built) << n;
    EXPECT_TRUE(with.find_file_path(n)->built) << n;
    EXPECT_EQ(with.find_file_path(n)->why_not, "") << n;
  }
  EXPECT_EQ(cpu.file_paths().size(), with.file_paths().size());
}

TEST(Backends, MemGpuTakesDataBuffersFromTheRegisteredBackend) {
  PerfOptions o;
  o.progress = false;
  o.pin = false;
  o.command_line = "perf_test";
  o.targets = {"embedded:64M"};
  o.ios = 500;
  o.qd = 8;
  o.threads = 2;
  o.mem = MemKind::gpu;
  RunHooks h;
  try {  // no GPU backend: refused before any I/O
    run(o, h);
    ADD_FAILURE() << "--mem gpu ran without a GPU backend";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::not_supported) << e.what();
  }
  auto fake = std::make_shared<FakeGpu>();
  const backends::Registry reg(fake);
  h.backends = &reg;
  RunResult r = run(o, h);
  ASSERT_EQ(r.errors(), 0u) << r.total().first_error;
  EXPECT_EQ(fake->calls, 2);  // one data heap per (thread, device)
  ASSERT_EQ(r.threads.size(), 2u);
  for (auto& t : r.threads) EXPECT_EQ(t.dir[0].ios, 500u);
}

}  // namespace
}  // namespace aisio::perf
