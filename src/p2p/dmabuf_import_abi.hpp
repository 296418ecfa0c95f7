// The user ABI of the dmabuf_import kernel module (package dmabuf-import-dkms, uPCIe;
// its own header is <linux/dmabuf_import.h>). Declared here from the documented layout
// so aisio builds without the package; tests/p2p/abi_test.cpp pins every size, offset
// and ioctl number, because a mismatch would only show as EINVAL or garbage at run time.
//
// Attachments belong to the open descriptor of the node: GET_MAP and DETACH must go to
// the descriptor ATTACH went to, and closing it tears its attachments down.
#pragma once
#include <linux/ioctl.h>

#include <cstdint>

namespace aisio::p2p::abi {

inline constexpr const char* kDmabufImportNode = "/dev/dmabuf_import";
inline constexpr const char* kDmabufImportPackage = "dmabuf-import-dkms";

// ATTACH: in fd (the dma-buf); out count (its DMA address segments).
struct DmabufImportAttach {
  int32_t fd;
  uint32_t count;
};

struct DmabufImportSegment {
  uint64_t dma_addr;
  uint64_t dma_len;
};

// GET_MAP: in fd and count (entries the caller allocated after the header); out the
// segments in buffer order. Allocate sizeof(DmabufImportGetMap) + count * segment.
struct DmabufImportGetMap {
  int32_t fd;
  uint32_t count;
  DmabufImportSegment dma_arr[];  // flexible array member (GNU C++ accepts it, as the ABI has it)
};

inline constexpr unsigned long kDmabufImportAttach = _IOWR('u', 0x47, DmabufImportAttach);
inline constexpr unsigned long kDmabufImportDetach = _IOW('u', 0x48, int);  // arg: the dma-buf fd
inline constexpr unsigned long kDmabufImportGetMap = _IOWR('u', 0x49, DmabufImportGetMap);

}  // namespace aisio::p2p::abi
