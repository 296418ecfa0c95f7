// The kernel modules' ABIs, pinned to ../shared/docs/p2p-kernel-abi.md (uPCIe v0.6.0):
// every size, field offset and ioctl number written out as a number worked out from the
// documented layout (x86-64, LP64), so a change to a declaration fails here instead of
// as EINVAL or a corrupted request on a real server.
#include <gtest/gtest.h>

#include <cstddef>

#include "p2p/dmabuf_import_abi.hpp"
#include "p2p/iommu_map_pa_abi.hpp"

using namespace aisio::p2p::abi;

namespace {
// The fields of an ioctl number (asm-generic/ioctl.h): dir 2 bits, size 14, type 8, nr 8.
unsigned dir(unsigned long r) { return unsigned(r >> 30) & 3; }
unsigned size(unsigned long r) { return unsigned(r >> 16) & 0x3fff; }
unsigned type(unsigned long r) { return unsigned(r >> 8) & 0xff; }
unsigned nr(unsigned long r) { return unsigned(r) & 0xff; }
constexpr unsigned kWrite = 1, kRead = 2;  // _IOC_WRITE, _IOC_READ
}  // namespace

TEST(DmabufImportAbi, Nodes) {
  EXPECT_STREQ(kDmabufImportNode, "/dev/dmabuf_import");
  EXPECT_STREQ(kDmabufImportPackage, "dmabuf-import-dkms");
}

TEST(DmabufImportAbi, Layouts) {
  // struct { __s32 fd; __u32 count; }
  EXPECT_EQ(sizeof(DmabufImportAttach), 8u);
  EXPECT_EQ(offsetof(DmabufImportAttach, fd), 0u);
  EXPECT_EQ(offsetof(DmabufImportAttach, count), 4u);
  // struct { __u64 dma_addr; __u64 dma_len; }
  EXPECT_EQ(sizeof(DmabufImportSegment), 16u);
  EXPECT_EQ(offsetof(DmabufImportSegment, dma_addr), 0u);
  EXPECT_EQ(offsetof(DmabufImportSegment, dma_len), 8u);
  // struct { __s32 fd; __u32 count; seg dma_arr[]; }: the array is inline, right after
  // the header, not a pointer.
  EXPECT_EQ(sizeof(DmabufImportGetMap), 8u);
  EXPECT_EQ(offsetof(DmabufImportGetMap, fd), 0u);
  EXPECT_EQ(offsetof(DmabufImportGetMap, count), 4u);
  EXPECT_EQ(offsetof(DmabufImportGetMap, dma_arr), 8u);
  EXPECT_EQ(alignof(DmabufImportGetMap), 8u);
}

TEST(DmabufImportAbi, IoctlNumbers) {
  EXPECT_EQ(kDmabufImportAttach, 0xC0087547ul);  // _IOWR('u', 0x47, 8 bytes)
  EXPECT_EQ(kDmabufImportDetach, 0x40047548ul);  // _IOW('u', 0x48, int)
  EXPECT_EQ(kDmabufImportGetMap, 0xC0087549ul);  // _IOWR('u', 0x49, 8 bytes)
  EXPECT_EQ(type(kDmabufImportAttach), unsigned('u'));
  EXPECT_EQ(nr(kDmabufImportAttach), 0x47u);
  EXPECT_EQ(dir(kDmabufImportAttach), kRead | kWrite);
  EXPECT_EQ(size(kDmabufImportAttach), 8u);
  EXPECT_EQ(nr(kDmabufImportDetach), 0x48u);
  EXPECT_EQ(dir(kDmabufImportDetach), kWrite);
  EXPECT_EQ(size(kDmabufImportDetach), 4u);
  EXPECT_EQ(nr(kDmabufImportGetMap), 0x49u);
  EXPECT_EQ(dir(kDmabufImportGetMap), kRead | kWrite);
  EXPECT_EQ(size(kDmabufImportGetMap), 8u);  // the header only: the array is not in the size
}

TEST(IommuMapPaAbi, Nodes) {
  EXPECT_STREQ(kIommuMapPaNode, "/dev/iommu_map_pa");
  EXPECT_STREQ(kIommuMapPaPackage, "iommu-map-pa-dkms");
  EXPECT_EQ(kIommuMapPaProtRead, 1u);
  EXPECT_EQ(kIommuMapPaProtWrite, 2u);
}

TEST(IommuMapPaAbi, Layouts) {
  // char bdf[16]; __s32 dmabuf_fd; __u32 page_size, nphys, prot, reserved;
  // __aligned_u64 iova_base, user_phys_ptr, map_handle.
  EXPECT_EQ(sizeof(IommuMapPaReq::bdf), 16u);
  EXPECT_EQ(offsetof(IommuMapPaReq, bdf), 0u);
  EXPECT_EQ(offsetof(IommuMapPaReq, dmabuf_fd), 16u);
  EXPECT_EQ(offsetof(IommuMapPaReq, page_size), 20u);
  EXPECT_EQ(offsetof(IommuMapPaReq, nphys), 24u);
  EXPECT_EQ(offsetof(IommuMapPaReq, prot), 28u);
  EXPECT_EQ(offsetof(IommuMapPaReq, reserved), 32u);
  EXPECT_EQ(offsetof(IommuMapPaReq, iova_base), 40u);  // 36 rounded up to 8 (__aligned_u64)
  EXPECT_EQ(offsetof(IommuMapPaReq, user_phys_ptr), 48u);
  EXPECT_EQ(offsetof(IommuMapPaReq, map_handle), 56u);
  EXPECT_EQ(sizeof(IommuMapPaReq), 64u);
  EXPECT_EQ(alignof(IommuMapPaReq), 8u);
  EXPECT_EQ(sizeof(IommuUnmapPaReq), 8u);
  EXPECT_EQ(offsetof(IommuUnmapPaReq, map_handle), 0u);
}

TEST(IommuMapPaAbi, IoctlNumbers) {
  EXPECT_EQ(kIommuMapPa, 0xC0407503ul);    // _IOWR('u', 0x03, 64 bytes)
  EXPECT_EQ(kIommuUnmapPa, 0x40087502ul);  // _IOW('u', 0x02, 8 bytes)
  EXPECT_EQ(type(kIommuMapPa), unsigned('u'));
  EXPECT_EQ(nr(kIommuMapPa), 0x03u);
  EXPECT_EQ(dir(kIommuMapPa), kRead | kWrite);
  EXPECT_EQ(size(kIommuMapPa), 64u);
  EXPECT_EQ(type(kIommuUnmapPa), unsigned('u'));
  EXPECT_EQ(nr(kIommuUnmapPa), 0x02u);
  EXPECT_EQ(dir(kIommuUnmapPa), kWrite);
  EXPECT_EQ(size(kIommuUnmapPa), 8u);
}
