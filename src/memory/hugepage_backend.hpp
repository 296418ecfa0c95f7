// DMA memory from 2 MiB hugepages with physical bus addresses (no IOMMU, e.g. uio):
// mmap(MAP_HUGETLB | MAP_POPULATE | MAP_LOCKED), then one /proc/self/pagemap lookup per
// hugepage. A hugepage is physically contiguous and stays put, so a chunk has one bus
// address per 2 MiB (DmaChunk.page_shift = 21).
//
// Needs reserved hugepages (vm.nr_hugepages) and CAP_SYS_ADMIN (pagemap hides PFNs from
// others). Both failures throw aisio::Error naming the exact fix.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "memory/dma.hpp"

namespace aisio {

struct HugepageOptions {
  // Where the memory comes from: "" = anonymous MAP_HUGETLB; otherwise a directory on
  // a mounted hugetlbfs (e.g. /dev/hugepages), where an unlinked file backs each chunk.
  std::string hugetlbfs_dir;
  bool lock = true;                               // MAP_LOCKED (retried without on EPERM/EAGAIN)
  std::string pagemap = "/proc/self/pagemap";     // for tests
};

class HugepageBackend final : public DmaBackend {
 public:
  static constexpr uint32_t PAGE_SHIFT = 21;
  static constexpr size_t PAGE_SIZE = size_t(1) << PAGE_SHIFT;

  explicit HugepageBackend(HugepageOptions opt = {}) : opt_(std::move(opt)) {}
  DmaChunk grow(size_t min_bytes) override;  // rounds up to whole 2 MiB pages
  std::string name() const override { return "hugepage"; }

  // Physical address of each page_size page of [va, va + len) from a pagemap file.
  // Throws Error(system) naming CAP_SYS_ADMIN when the PFNs read as 0, and
  // Error(no_memory) when a page is not present.
  static std::vector<uint64_t> physical_addresses(const void* va, size_t len, size_t page_size,
                                                  const std::string& pagemap = "/proc/self/pagemap");
  // The advice for a shortage of `pages` 2 MiB pages, from /proc/meminfo's counters.
  static std::string shortage_message(size_t pages, const std::string& hugetlbfs_dir = {});

  struct Meminfo {
    size_t total = 0, free = 0, reserved = 0, surplus = 0, page_kb = 0;
  };
  static Meminfo meminfo(const std::string& path = "/proc/meminfo");

 private:
  HugepageOptions opt_;
};

}  // namespace aisio
