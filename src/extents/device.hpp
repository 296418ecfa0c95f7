// Which block device a file lives on, and where its file system starts on the
// whole disk (partition offset), from sysfs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace aisio::extents {

struct BlockDevice {
  uint32_t major = 0, minor = 0;
  std::string name;          // "nvme0n1p2", "loop3"
  std::string disk;          // the whole disk: "nvme0n1" (== name when not a partition)
  std::string devnode;       // "/dev/nvme0n1p2" (from uevent DEVNAME)
  std::string disk_devnode;  // "/dev/nvme0n1"
  bool partition = false;
  uint64_t partition_start = 0;     // bytes from the start of the disk (sysfs start * 512)
  uint64_t size = 0;                // bytes (sysfs size * 512)
  uint32_t logical_block_size = 512;
  uint32_t physical_block_size = 512;
  // Loop devices: the backing file and the byte offset of the device inside it.
  std::string loop_backing_file;
  uint64_t loop_offset = 0;
  // Devices this one is stacked on (device-mapper, md RAID: sysfs slaves/). When not
  // empty, offsets on this device are NOT offsets on one namespace: the mapping
  // table would have to be followed, which this layer does not do.
  std::vector<std::string> slaves;

  // Byte offset to add to a file system's device offsets to get offsets on `disk`.
  uint64_t disk_offset() const { return partition_start; }
};

// The device numbered maj:min, read from <sysfs>/dev/block/MAJ:MIN.
BlockDevice block_device(uint32_t major, uint32_t minor, const std::string& sysfs = "/sys");
// The device holding the file system of `path` / `fd` (st_dev). Errc::not_supported
// when st_dev is not a block device (major 0: tmpfs, overlayfs, btrfs subvolumes, NFS).
BlockDevice backing_device(const std::string& path, const std::string& sysfs = "/sys");
BlockDevice backing_device(int fd, const std::string& sysfs = "/sys");

}  // namespace aisio::extents
