// The backends Registry: the plug point through which the GPU backends arrive (no global
// hooks, no registration order). A fake GpuBackends hands out the controller's own host
// DMA memory and counts the calls, which shows that `--mem gpu` takes its data buffers
// from the registered backend and is refused without one.
#include <gtest/gtest.h>

#include "backends/registry.hpp"
#include "backends/unvme.hpp"
#include "common/error.hpp"
#include "nvme/controller.hpp"
#include "perf/runner.hpp"
#include "target/target.hpp"

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

// What the device backends know of a namespace comes from the opened target, and a
// queue deeper than the controller allows (CAP.MQES + 1) is refused with the target's name.
TEST(Backends, NamespaceTargetDescribesTheNamespaceAndRefusesTooDeepAQueue) {
  auto t = target::open("embedded:64M");
  const backends::UnvmeTarget u = backends::target_of(t, 1);
  EXPECT_EQ(u.describe, t->describe());
  EXPECT_EQ(u.lba_size, t->ns(1).lba_size);
  EXPECT_EQ(u.ns_bytes, 64u << 20);
  EXPECT_EQ(u.max_queue_entries, t->max_queue_entries());
  EXPECT_EQ(u.keep, t);
  EXPECT_NO_THROW(u.check_queue_entries(8, u.max_queue_entries));
  try {
    u.check_queue_entries(8, u.max_queue_entries + 1ull);
    ADD_FAILURE() << "a queue of CAP.MQES + 2 entries was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find(u.describe + ": --qd 8 needs a queue of"), std::string::npos) << e.what();
  }
  EXPECT_THROW(backends::target_of(t, 2), Error);  // no namespace 2

  PerfOptions o;  // the same check refuses a perf run before any I/O
  o.progress = false;
  o.pin = false;
  o.command_line = "perf_test";
  o.targets = {"embedded:64M"};
  o.ios = 10;
  o.qd = t->max_queue_entries();  // needs qd + 1 entries
  try {
    run(o, {});
    ADD_FAILURE() << "--qd " << o.qd << " ran on a queue of " << t->max_queue_entries() << " entries";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument) << e.what();
    EXPECT_NE(std::string(e.what()).find("CAP.MQES"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace aisio::perf
