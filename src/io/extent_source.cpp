#include "io/extent_source.hpp"

#include <fmt/format.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "common/error.hpp"
#include "extents/device.hpp"
#include "extents/fiemap.hpp"
#include "extents/xfs.hpp"
#include "io/cached_block_reader.hpp"
#include "io/util.hpp"

namespace aisio::io {

FiemapSource::FiemapSource(std::string root, uint64_t device_offset)
    : root_(std::move(root)), device_offset_(device_offset) {}

ResolvedFile FiemapSource::resolve(const std::string& rel) {
  auto fx = extents::resolve(join_path(root_, rel));
  return {fx.size, std::move(fx.extents)};
}

std::string FiemapSource::describe() const {
  return fmt::format("FIEMAP (sync) under {}{}", root_,
                     device_offset_ ? fmt::format(", device offset {}", device_offset_) : "");
}

XfsSource::XfsSource(std::shared_ptr<extents::BlockReader> dev, std::string root, uint64_t device_offset)
    : fs_(std::make_unique<extents::xfs::Filesystem>(std::make_shared<CachedBlockReader>(std::move(dev)))),
      root_(root.empty() ? "/" : std::move(root)),
      device_offset_(device_offset) {}

XfsSource::~XfsSource() = default;

std::string XfsSource::full(const std::string& rel) const { return join_path(root_, rel); }

ResolvedFile XfsSource::resolve(const std::string& rel) {
  std::lock_guard lk(mu_);
  uint64_t ino = fs_->resolve(full(rel));
  auto in = fs_->inode(ino);
  if (!in.is_reg()) throw Error(Errc::invalid_argument, full(rel) + ": not a regular file");
  return {in.size, fs_->extents(ino)};
}

std::vector<uint8_t> XfsSource::read_file(const std::string& rel) {
  std::lock_guard lk(mu_);
  uint64_t ino = fs_->resolve(full(rel));
  return fs_->read_file(ino);
}

bool XfsSource::exists(const std::string& rel) {
  std::lock_guard lk(mu_);
  try {
    fs_->resolve(full(rel));
    return true;
  } catch (const Error&) {
    return false;
  }
}

std::string XfsSource::describe() const {
  const auto& sb = fs_->superblock();
  return fmt::format("XFS on-disk decoder (uuid {}, {} B blocks) under {}", sb.uuid_string(), sb.block_size, root_);
}

MountInfo mount_info(const std::string& dir) {
  MountInfo m;
  struct statfs sf {};
  if (::statfs(dir.c_str(), &sf) == 0) {
    switch (uint64_t(sf.f_type)) {
      case XFS_SUPER_MAGIC: m.fs_type = "xfs"; break;
      case EXT4_SUPER_MAGIC: m.fs_type = "ext4"; break;
      case TMPFS_MAGIC: m.fs_type = "tmpfs"; break;
      case BTRFS_SUPER_MAGIC: m.fs_type = "btrfs"; break;
      case OVERLAYFS_SUPER_MAGIC: m.fs_type = "overlay"; break;
      default: m.fs_type = fmt::format("0x{:x}", uint64_t(sf.f_type));
    }
  }
  auto bd = extents::backing_device(dir);
  m.device = bd.devnode.empty() ? "/dev/" + bd.name : bd.devnode;
  m.device_offset = bd.disk_offset();
  if (!bd.loop_backing_file.empty()) {
    m.backing_file = bd.loop_backing_file;
    m.device_offset += bd.loop_offset;
  }
  return m;
}

}  // namespace aisio::io
