// The device's address space: translation bounds and safe unmapping.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/error.hpp"
#include "common/expect_error.hpp"
#include "emu/dma_space.hpp"

using aisio::test::expect_error;

namespace aisio::emu {
namespace {

TEST(DmaSpace, TranslateBounds) {
  DmaSpace s;
  std::vector<uint8_t> a(8192), b(4096);
  uint64_t ba = s.map(a.data(), a.size(), nullptr);
  uint64_t bb = s.map(b.data(), b.size(), nullptr);
  EXPECT_EQ(ba, uint64_t(1) << 40);
  EXPECT_EQ(bb, uint64_t(2) << 40);
  EXPECT_EQ(s.translate(ba, 8192), a.data());
  EXPECT_EQ(s.translate(ba + 100, 8092), a.data() + 100);
  EXPECT_EQ(s.translate(ba + 100, 8093), nullptr);  // one byte past the region
  EXPECT_EQ(s.translate(ba + 8192, 1), nullptr);
  EXPECT_EQ(s.translate(ba + 8192, 0), a.data() + 8192);
  EXPECT_EQ(s.translate(0, 1), nullptr);
  EXPECT_EQ(s.translate(0x1000, 16), nullptr);  // slot "0" does not exist
  EXPECT_EQ(s.translate(uint64_t(3) << 40, 1), nullptr);
  EXPECT_EQ(s.translate(~uint64_t(0), 1), nullptr);
  EXPECT_EQ(s.translate(ba + ~uint64_t(0) / 2, 16), nullptr);
  s.unmap(ba);
  EXPECT_EQ(s.translate(ba, 1), nullptr);
  EXPECT_EQ(s.translate(bb, 4096), b.data());
  expect_error([&] { s.unmap(ba); }, Errc::invalid_argument,
               "DMA unmap of an address that is not a mapped region base");
  expect_error([&] { s.unmap(bb + 4096); }, Errc::invalid_argument, "not a mapped region base");
  EXPECT_EQ(s.mapped_regions(), 1u);
}

TEST(DmaSpace, SlotsAreReusedLast) {
  DmaSpace s;
  uint8_t x[64];
  uint64_t first = s.map(x, sizeof x, nullptr);
  s.unmap(first);
  EXPECT_NE(s.map(x, sizeof x, nullptr), first);
}

TEST(DmaSpace, FullSpaceThrows) {
  DmaSpace s;
  uint8_t x[64];
  for (unsigned i = 0; i < DmaSpace::SLOTS; ++i) s.map(x, sizeof x, nullptr);
  expect_error([&] { s.map(x, sizeof x, nullptr); }, Errc::no_memory,
               "emulator DMA space full: all 256 regions mapped");
}

TEST(DmaSpace, UnmapWaitsForReaders) {
  DmaSpace s;
  std::vector<uint8_t> a(4096);
  std::atomic<bool> released{false}, in_section{false}, leave{false};
  auto keep = std::shared_ptr<void>(nullptr, [&](void*) { released = true; });
  uint64_t bus = s.map(a.data(), a.size(), keep);
  keep.reset();
  auto r = s.reader();
  std::thread t([&] {
    DmaSpace::Reader::Section sec(r);
    EXPECT_NE(s.translate(bus, 16), nullptr);
    in_section = true;
    while (!leave) std::this_thread::yield();
  });
  while (!in_section) std::this_thread::yield();
  std::thread u([&] { s.unmap(bus); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(released);  // the reader is still inside a section that saw the region
  leave = true;
  t.join();
  u.join();
  EXPECT_TRUE(released);
  DmaSpace::Reader::Section sec(r);
  EXPECT_EQ(s.translate(bus, 16), nullptr);
}

TEST(DmaSpace, BackendGivesReachableMemory) {
  auto space = std::make_shared<DmaSpace>();
  auto heap = DmaHeap::create(std::make_unique<EmuDmaBackend>(space), 1 << 20);
  auto buf = heap->alloc(8192);
  buf.data()[5] = 42;
  uint8_t* p = space->translate(buf.iova(), 8192);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p[5], 42);
  EXPECT_EQ(space->mapped_regions(), 1u);
  buf.reset();
  heap.reset();
  EXPECT_EQ(space->mapped_regions(), 0u);
}

}  // namespace
}  // namespace aisio::emu
