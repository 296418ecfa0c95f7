/* The udmabuf-import uAPI: an out-of-tree kernel module that imports a dma-buf (here:
 * GPU memory exported by cuMemGetHandleForAddressRange(..., DMA_BUF_FD)) on behalf of a
 * PCIe function and returns the DMA addresses that function must use to reach it.
 *
 *   fd = open("/dev/udmabuf-import", O_RDWR);
 *   ATTACH   {dmabuf_fd, PCI function} -> handle, size, number of DMA segments
 *            (dma_buf_attach + dma_buf_map_attachment(DMA_BIDIRECTIONAL) in the module)
 *   GET_MAP  {handle, entries[nents]} -> (dma_addr, len) per segment, in buffer order
 *   DETACH   {handle}                  (unmap + detach; also done when fd is closed)
 *
 * The mapping stays valid while the attachment exists. This header is the whole
 * contract: the module is not part of this repository, and nothing here assumes it is
 * loaded (aisio reports its absence with the device node's path). Fixed-width fields
 * and explicit padding: the same layout for 32- and 64-bit user space. */
#ifndef AISIO_UDMABUF_IMPORT_H
#define AISIO_UDMABUF_IMPORT_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define UDMABUF_IMPORT_DEVICE "/dev/udmabuf-import"

struct udmabuf_import_attach {
  __s32 dmabuf_fd;   /* in: the dma-buf to import */
  __u16 pci_domain;  /* in: the importing PCIe function (DMA addresses are per device */
  __u8 pci_bus;      /*     behind an IOMMU) */
  __u8 pci_devfn;    /*     (device << 3) | function */
  __u64 handle;      /* out: names the attachment in GET_MAP / DETACH */
  __u64 size;        /* out: bytes of the dma-buf */
  __u32 nents;       /* out: DMA segments of the mapping */
  __u32 pad;
};

struct udmabuf_import_entry {
  __u64 dma_addr;    /* bus address of the segment as seen by the PCIe function */
  __u64 len;         /* bytes */
};

struct udmabuf_import_get_map {
  __u64 handle;      /* in */
  __u32 nents;       /* in: room in entries; out: segments written */
  __u32 pad;
  __u64 entries;     /* in: user pointer to struct udmabuf_import_entry[nents] */
};

struct udmabuf_import_detach {
  __u64 handle;      /* in */
};

#define UDMABUF_IMPORT_IOC_MAGIC 'I'
#define UDMABUF_ATTACH _IOWR(UDMABUF_IMPORT_IOC_MAGIC, 0x01, struct udmabuf_import_attach)
#define UDMABUF_GET_MAP _IOWR(UDMABUF_IMPORT_IOC_MAGIC, 0x02, struct udmabuf_import_get_map)
#define UDMABUF_DETACH _IOW(UDMABUF_IMPORT_IOC_MAGIC, 0x03, struct udmabuf_import_detach)

#endif /* AISIO_UDMABUF_IMPORT_H */
