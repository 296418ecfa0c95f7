// The user ABI of the iommu_map_pa kernel module (package iommu-map-pa-dkms, uPCIe; its
// own header is <upcie/iommu_map_pa.h>). Declared here from the documented layout so
// aisio builds without the package; tests/p2p/abi_test.cpp pins sizes, offsets and
// ioctl numbers.
//
// The module inserts physical addresses into the IOMMU domain a PCI function currently
// uses, at an IOVA the caller chooses. Mappings belong to the open descriptor of the
// node: closing it removes them.
#pragma once
#include <linux/ioctl.h>

#include <cstdint>

namespace aisio::p2p::abi {

inline constexpr const char* kIommuMapPaNode = "/dev/iommu_map_pa";
inline constexpr const char* kIommuMapPaPackage = "iommu-map-pa-dkms";

inline constexpr uint32_t kIommuMapPaProtRead = 1u << 0;
inline constexpr uint32_t kIommuMapPaProtWrite = 1u << 1;  // prot 0 also means both

struct IommuMapPaReq {
  char bdf[16];                       // "0000:01:00.0", NUL-terminated
  int32_t dmabuf_fd;                  // optional lifetime reference; < 0 to skip
  uint32_t page_size;                 // bytes each user_phys_ptr entry covers
  uint32_t nphys;                     // entries at user_phys_ptr
  uint32_t prot;
  uint32_t reserved;
  alignas(8) uint64_t iova_base;      // __aligned_u64: 4 bytes of padding precede it
  alignas(8) uint64_t user_phys_ptr;  // user pointer to uint64_t[nphys]
  alignas(8) uint64_t map_handle;     // out: names the mapping for UNMAP
};

struct IommuUnmapPaReq {
  alignas(8) uint64_t map_handle;
};

inline constexpr unsigned long kIommuMapPa = _IOWR('u', 0x03, IommuMapPaReq);
inline constexpr unsigned long kIommuUnmapPa = _IOW('u', 0x02, IommuUnmapPaReq);

}  // namespace aisio::p2p::abi
