// The data set on an XFS file system, made one way for the demo, the tests, the bench and
// the testbed (`aisio fil scenario` runs it for scripts):
//
//   mkfs.xfs on a sparse image file (or on `device`: a block device or image file that
//   exists, kept as it is when it already holds XFS and keep_xfs), then either
//   - loop mount (root): the data set is generated into the mounted file system, so it
//     has real holes, unwritten extents and fragmented files; or
//   - protofile (no root or no loop devices): the data set is generated into a plain
//     directory and copied in by `mkfs.xfs -p` (holes and fragmentation are not kept).
//
// The data set lives at /data inside the file system. The destructor unmounts and
// removes everything it created (unless keep).
#pragma once
#include <memory>
#include <string>

#include "fil/gen.hpp"
#include "report/record.hpp"

namespace aisio::fil {

struct ImageOptions {
  std::string workdir;       // "" = a new temporary directory (removed at the end)
  uint64_t image_size = 0;   // 0 = from the data set size
  GenOptions gen;
  std::string mode = "auto"; // auto (mount when root and it works), mount, protofile
  std::string image;         // the new image file ("" = workdir/fil.img, removed at the end; else kept)
  std::string device;        // "" = a new image file; else this block device or file (never removed)
  bool keep_xfs = false;     // device: mount the XFS it holds instead of mkfs (a previous data set is replaced)
  std::string fs = "xfs";    // xfs; ext4 (mounted only: no XFS decoder); auto: xfs where mkfs.xfs is installed
  std::string mount_dir;     // "" = workdir/mnt
};

class DatasetImage {
 public:
  // Errc::not_supported when mkfs.xfs is missing (the message says how to get it).
  static std::unique_ptr<DatasetImage> create(const ImageOptions& o);
  ~DatasetImage();
  DatasetImage(const DatasetImage&) = delete;
  DatasetImage& operator=(const DatasetImage&) = delete;

  const std::string& image() const { return image_; }
  const std::string& workdir() const { return workdir_; }
  // The data set as a directory here: the mounted /data, or (protofile) the source
  // directory it was copied from; "" after umount() in mount mode.
  const std::string& data_dir() const { return data_dir_; }
  std::string fs_dir() const { return "/data"; }  // inside the file system
  bool mounted() const { return !mount_dir_.empty(); }
  const std::string& mode() const { return mode_; }
  const GenResult& gen() const { return gen_; }
  void umount();                 // idempotent
  void set_keep(bool k) { keep_ = k; }

 private:
  DatasetImage() = default;
  std::string workdir_, image_, mount_dir_, data_dir_, mode_;
  bool own_workdir_ = false, own_image_ = true, keep_ = false;
  GenResult gen_;
};

// Helpers (also for tests): a shell command's exit status and output; whether a tool is
// on PATH; mkfs.xfs allowing small images (mkfs: of TYPE, xfs or ext4). "" on success, else the error text.
int run_shell(const std::string& cmd, std::string* out = nullptr);
using report::shell_quote;
bool have_tool(const std::string& name);
std::string mkfs_xfs(const std::string& target, const std::string& extra = "");
std::string mkfs(const std::string& type, const std::string& target, const std::string& extra = "");
// Whether `path` (a block device or image) starts with an XFS superblock.
bool holds_xfs(const std::string& path);
// Writes a mkfs.xfs protofile placing the tree `src` at `/name` of the new file system.
void write_protofile(const std::string& proto, const std::string& src, const std::string& name);

}  // namespace aisio::fil
