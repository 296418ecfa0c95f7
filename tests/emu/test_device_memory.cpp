// Device-memory regions of the software controller's DMA space (the hook the GPU
// aperture uses), without a GPU: the "device memory" is a PROT_NONE range that the
// controller's threads must never dereference, and its bytes live in a host vector the
// DeviceMemoryOps copy to and from. Data transfers through the driver's PRPs work; queue
// memory there is refused.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <cstring>
#include <random>

#include "common/error.hpp"
#include "common/expect_error.hpp"
#include "emu/controller.hpp"
#include "emu/dma_space.hpp"
#include "nvme/controller.hpp"

using aisio::test::expect_error;

namespace aisio::emu {
namespace {

// A fake device: `len` bytes at an address that faults on any CPU access.
struct FakeDevice {
  explicit FakeDevice(size_t n) : len(n), bytes(n) {
    void* p = mmap(nullptr, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw Error(Errc::no_memory, "mmap");
    va = static_cast<uint8_t*>(p);
    ops.to_device = [](void* c, uint8_t* dst, const uint8_t* src, size_t k) {
      auto* d = static_cast<FakeDevice*>(c);
      d->copies++;
      std::memcpy(d->bytes.data() + (dst - d->va), src, k);
    };
    ops.from_device = [](void* c, uint8_t* dst, const uint8_t* src, size_t k) {
      auto* d = static_cast<FakeDevice*>(c);
      d->copies++;
      std::memcpy(dst, d->bytes.data() + (src - d->va), k);
    };
    ops.ctx = this;
  }
  ~FakeDevice() { munmap(va, len); }
  size_t len;
  uint8_t* va = nullptr;
  std::vector<uint8_t> bytes;
  DeviceMemoryOps ops;
  std::atomic<uint64_t> copies{0};
};

TEST(DeviceMemory, TranslateKeepsDeviceRegionsForDataOnly) {
  DmaSpace s;
  FakeDevice dev(1 << 20);
  std::vector<uint8_t> host(4096);
  uint64_t hb = s.map(host.data(), host.size(), nullptr);
  uint64_t db = s.map_device(dev.va, dev.len, nullptr, &dev.ops);
  const DeviceMemoryOps* ops = &dev.ops;
  EXPECT_EQ(s.translate(db, 4096), nullptr);  // queues, PRP lists, SGL segments: refused
  EXPECT_EQ(s.translate_data(db + 100, 4096, &ops), dev.va + 100);
  EXPECT_EQ(ops, &dev.ops);
  EXPECT_EQ(s.translate_data(hb, 4096, &ops), host.data());
  EXPECT_EQ(ops, nullptr);
  EXPECT_EQ(s.translate_data(db + dev.len - 10, 11, &ops), nullptr);
  expect_error([&] { s.map_device(dev.va, dev.len, nullptr, nullptr); }, Errc::invalid_argument,
               "device-memory DMA map without copy operations");
  s.unmap(db);
  EXPECT_EQ(s.translate_data(db, 1, &ops), nullptr);
}

// The driver's PRP building on a chunk with a 64 KiB bus table, the controller moving the
// bytes through the ops: host -> media -> device -> media -> host.
class FakeDeviceBackend final : public DmaBackend {
 public:
  FakeDeviceBackend(std::shared_ptr<DmaSpace> s, FakeDevice& d) : space_(std::move(s)), dev_(d) {}
  DmaChunk grow(size_t min_bytes) override {
    if (used_) throw Error(Errc::no_memory, "one chunk only");
    used_ = true;
    uint64_t base = space_->map_device(dev_.va, dev_.len, nullptr, &dev_.ops);
    DmaChunk c;
    c.va = dev_.va;
    c.len = dev_.len;
    c.page_shift = 16;
    for (size_t o = 0; o < dev_.len; o += 65536) c.bus.push_back(base + o);
    c.zero = [](uint8_t*, size_t) {};  // the CPU cannot touch it (the fake is zero already)
    (void)min_bytes;
    return c;
  }
  std::string name() const override { return "fake device"; }

 private:
  std::shared_ptr<DmaSpace> space_;
  FakeDevice& dev_;
  bool used_ = false;
};

TEST(DeviceMemory, DriverMovesDataThroughTheOps) {
  EmuConfig cfg;
  cfg.namespaces = {NamespaceConfig{16ull << 20, 512, Backing::ram, ""}};
  SoftController sc(cfg);
  sc.start();
  auto ctrl = nvme::Controller::create(sc.bar0(), sc.dma());
  FakeDevice dev(4 << 20);
  auto heap = DmaHeap::create(std::make_unique<FakeDeviceBackend>(sc.dma_space(), dev), 4 << 20);
  DmaBuffer dbuf = heap->alloc(1 << 20, 65536);
  auto host = ctrl->dma()->alloc(1 << 20);
  std::mt19937_64 r(3);
  for (size_t i = 0; i < host.size(); i += 8) {
    uint64_t v = r();
    std::memcpy(host.data() + i, &v, 8);
  }
  auto qp = ctrl->create_queue_pair({.depth = 32});
  ASSERT_TRUE(qp->write(1, 0, 2048, host).ok());
  // Reads into device memory of several sizes (PRP lists across 64 KiB pages included).
  for (uint32_t nlb : {1u, 8u, 200u, 256u}) {
    auto c = qp->read(1, 0, nlb, dbuf, 4096 + 4);
    ASSERT_TRUE(c.ok()) << c.describe();
    size_t at = size_t(dbuf.data() - dev.va) + 4096 + 4;
    ASSERT_EQ(0, std::memcmp(dev.bytes.data() + at, host.data(), size_t(nlb) * 512)) << nlb;
  }
  EXPECT_GT(dev.copies.load(), 0u);
  ASSERT_TRUE(qp->read(1, 0, 2048, dbuf).ok());
  ASSERT_TRUE(qp->write(1, 8192, 2048, dbuf).ok());  // device memory -> media
  auto back = ctrl->dma()->alloc(1 << 20);
  ASSERT_TRUE(qp->read(1, 8192, 2048, back).ok());
  EXPECT_EQ(0, std::memcmp(back.data(), host.data(), host.size()));
  // Queue memory in a device region is refused (the controller cannot read it).
  DmaBuffer q = heap->alloc(65536, 65536);
  expect_error([&] { ctrl->create_io_queue_at(16, q.iova(), q.iova(32768)); }, Errc::nvme_status,
               "Create I/O Completion Queue");
  qp.reset();
  dbuf.reset();
  q.reset();
}

}  // namespace
}  // namespace aisio::emu
