// DMA memory behind an IOMMU (vfio type1): memory is mapped into the device's I/O
// address space with VFIO_IOMMU_MAP_DMA at an IOVA the mapper chooses, so a chunk is
// one contiguous bus range (page_shift 63) whatever the physical pages are. Uses 2 MiB
// hugepages when reserved (fewer IOMMU entries), else ordinary anonymous memory, which
// the IOMMU mapping pins. Needs no CAP_SYS_ADMIN.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "memory/dma.hpp"

namespace aisio {

// An I/O address space: pcie::VfioContainer implements it; tests use a fake.
class IovaMapper {
 public:
  virtual ~IovaMapper() = default;
  // Maps [va, va + len) for device reads and writes and returns its IOVA (len and va
  // 4 KiB aligned). Throws Error on failure.
  virtual uint64_t map_dma(void* va, size_t len) = 0;
  virtual void unmap_dma(uint64_t iova, size_t len) noexcept = 0;
  // Takes [iova, iova + len) out of the space map_dma allocates from, without mapping
  // anything: for mappings another party puts into the same IOMMU domain (iommu_map_pa
  // for GPU memory), so theirs and ours can never overlap. len is a 2 MiB multiple; the
  // range is 2 MiB aligned. Throws Error(no_memory) when the space is exhausted.
  virtual uint64_t reserve_iova(size_t len) = 0;
  // Gives a reserved range back. Only once nothing is mapped there any more.
  virtual void release_iova(uint64_t iova, size_t len) noexcept = 0;
  virtual std::string describe() const = 0;
};

struct VfioBackendOptions {
  enum class Memory { hugepages_or_anonymous, hugepages, anonymous };
  Memory memory = Memory::hugepages_or_anonymous;
};

class VfioBackend final : public DmaBackend {
 public:
  explicit VfioBackend(std::shared_ptr<IovaMapper> mapper, VfioBackendOptions opt = {});
  DmaChunk grow(size_t min_bytes) override;  // rounds up to 2 MiB
  std::string name() const override;         // "vfio 0000:01:00.0 (hugepages)"
  // The same I/O address space, shared: GPU memory mapped into it (src/p2p) keeps it
  // alive until that mapping is gone.
  const std::shared_ptr<IovaMapper>& shared_mapper() const { return mapper_; }

 private:
  std::shared_ptr<IovaMapper> mapper_;
  VfioBackendOptions opt_;
  bool used_hugepages_ = false;
};

}  // namespace aisio
