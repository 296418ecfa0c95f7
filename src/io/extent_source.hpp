// Where the unvme path learns a file's extents: FIEMAP on a file system the kernel has
// mounted, the XFS on-disk decoder on an unmounted one (reading the namespace through
// our driver, see nvme_block_reader.hpp), or later homid's published extent index.
// Extents are byte offsets on the device the file system sits on; device_offset()
// is added to reach namespace byte offsets (a partition start, a loop offset).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "extents/block_reader.hpp"
#include "extents/extent.hpp"

namespace aisio::extents::xfs {
class Filesystem;
}

namespace aisio::io {

struct ResolvedFile {
  uint64_t size = 0;
  std::vector<extents::Extent> extents;
};

class ExtentSource {
 public:
  virtual ~ExtentSource() = default;
  // Extents of `rel` (a path relative to the data set root). Thread-safe.
  virtual ResolvedFile resolve(const std::string& rel) = 0;
  virtual std::string name() const = 0;       // "fiemap", "xfs", "homid"
  virtual std::string describe() const = 0;   // one line for reports
  virtual uint64_t device_offset() const { return 0; }
};

// FIEMAP (with FIEMAP_FLAG_SYNC) of files under `root` on a mounted file system.
class FiemapSource : public ExtentSource {
 public:
  FiemapSource(std::string root, uint64_t device_offset);
  ResolvedFile resolve(const std::string& rel) override;
  std::string name() const override { return "fiemap"; }
  std::string describe() const override;
  uint64_t device_offset() const override { return device_offset_; }

 private:
  std::string root_;
  uint64_t device_offset_;
};

// The XFS decoder over `dev` (the file system's bytes; byte 0 = its first sector),
// files under `root` inside the file system ("/" or "/data").
// Small metadata reads are cached for the source's lifetime (cached_block_reader.hpp):
// the device must not change underneath it (fs().refresh() does not see through it).
class XfsSource : public ExtentSource {
 public:
  XfsSource(std::shared_ptr<extents::BlockReader> dev, std::string root, uint64_t device_offset);
  ~XfsSource() override;
  ResolvedFile resolve(const std::string& rel) override;
  std::string name() const override { return "xfs"; }
  std::string describe() const override;
  uint64_t device_offset() const override { return device_offset_; }
  // Whole-file read through the decoder (for a manifest stored inside the image).
  std::vector<uint8_t> read_file(const std::string& rel);
  bool exists(const std::string& rel);
  extents::xfs::Filesystem& fs() { return *fs_; }

 private:
  std::string full(const std::string& rel) const;
  std::mutex mu_;
  std::unique_ptr<extents::xfs::Filesystem> fs_;
  std::string root_;
  uint64_t device_offset_;
};

// Which mounted file system `dir` is on, and where its bytes are in the backing store
// a controller could serve: for a loop device, the backing file and offset.
struct MountInfo {
  std::string device;        // "/dev/loop0"
  std::string backing_file;  // loop devices: the image file ("" otherwise)
  uint64_t device_offset = 0;  // file system byte 0 in the backing store / whole disk
  std::string fs_type;       // from statfs: "xfs", "ext4", "tmpfs", ...
};
// Errc::not_supported when `dir` is not on a block device.
MountInfo mount_info(const std::string& dir);

}  // namespace aisio::io
