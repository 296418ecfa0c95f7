#include "memory/vfio_backend.hpp"

#include <sys/mman.h>

#include <cerrno>

#include "common/error.hpp"
#include "memory/hugepage_backend.hpp"

namespace aisio {

VfioBackend::VfioBackend(std::shared_ptr<IovaMapper> mapper, VfioBackendOptions opt)
    : mapper_(std::move(mapper)), opt_(opt) {
  if (!mapper_) throw Error(Errc::invalid_argument, "VfioBackend needs an IOVA mapper");
}

std::string VfioBackend::name() const {
  return "vfio " + mapper_->describe() + (used_hugepages_ ? " (hugepages)" : "");
}

DmaChunk VfioBackend::grow(size_t min_bytes) {
  constexpr size_t HP = HugepageBackend::PAGE_SIZE;
  size_t len = (std::max<size_t>(min_bytes, 1) + HP - 1) / HP * HP;
  void* p = MAP_FAILED;
  using M = VfioBackendOptions::Memory;
  if (opt_.memory != M::anonymous) {
    p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED && opt_.memory == M::hugepages)
      throw Error(Errc::no_memory, HugepageBackend::shortage_message(len / HP));
    if (p != MAP_FAILED) used_hugepages_ = true;
  }
  if (p == MAP_FAILED) {
    p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) throw_errno("mmap " + std::to_string(len) + " bytes for vfio DMA");
  }
  uint64_t iova;
  try {
    iova = mapper_->map_dma(p, len);
  } catch (...) {
    munmap(p, len);
    throw;
  }
  DmaChunk c;
  c.va = static_cast<uint8_t*>(p);
  c.len = len;
  c.page_shift = 63;
  c.bus = {iova};
  auto mapper = mapper_;
  c.keepalive = std::shared_ptr<void>(p, [mapper, iova, len](void* q) {
    mapper->unmap_dma(iova, len);
    munmap(q, len);
  });
  return c;
}

}  // namespace aisio
