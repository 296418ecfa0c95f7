#include "extents/device.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace aisio::extents {
namespace fs = std::filesystem;
namespace {

bool read_line(const fs::path& p, std::string& out) {
  std::ifstream f(p);
  if (!f) return false;
  std::getline(f, out);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ' || out.back() == '\r')) out.pop_back();
  return true;
}

bool read_u64(const fs::path& p, uint64_t& v) {
  std::string s;
  if (!read_line(p, s) || s.empty()) return false;
  try {
    size_t used = 0;
    v = std::stoull(s, &used, 10);
    return used == s.size();
  } catch (...) {
    return false;
  }
}

std::string devname(const fs::path& dir, const std::string& fallback) {
  std::ifstream f(dir / "uevent");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("DEVNAME=", 0) == 0) return "/dev/" + line.substr(8);
  return "/dev/" + fallback;
}

}  // namespace

BlockDevice block_device(uint32_t maj, uint32_t min, const std::string& sysfs) {
  std::string id = std::to_string(maj) + ":" + std::to_string(min);
  fs::path link = fs::path(sysfs) / "dev" / "block" / id;
  std::error_code ec;
  fs::path dir = fs::canonical(link, ec);
  if (ec)
    throw Error(Errc::not_supported, "block device " + id + " not found in " + link.string() + " (" +
                                         ec.message() + ")");
  BlockDevice d;
  d.major = maj;
  d.minor = min;
  d.name = dir.filename().string();
  d.partition = fs::exists(dir / "partition");
  fs::path diskdir = dir;
  if (d.partition) {
    diskdir = dir.parent_path();
    uint64_t start = 0;
    if (!read_u64(dir / "start", start))
      throw Error(Errc::system, "cannot read partition start from " + (dir / "start").string());
    d.partition_start = start * 512;
  }
  d.disk = diskdir.filename().string();
  d.devnode = devname(dir, d.name);
  d.disk_devnode = devname(diskdir, d.disk);
  uint64_t v = 0;
  if (read_u64(dir / "size", v)) d.size = v * 512;
  if (read_u64(diskdir / "queue" / "logical_block_size", v) && v) d.logical_block_size = uint32_t(v);
  if (read_u64(diskdir / "queue" / "physical_block_size", v) && v) d.physical_block_size = uint32_t(v);
  std::error_code sec;
  for (auto& e : fs::directory_iterator(diskdir / "slaves", sec)) d.slaves.push_back(e.path().filename().string());
  std::sort(d.slaves.begin(), d.slaves.end());
  std::string backing;
  if (read_line(diskdir / "loop" / "backing_file", backing)) {
    d.loop_backing_file = backing;
    if (read_u64(diskdir / "loop" / "offset", v)) d.loop_offset = v;
  }
  return d;
}

BlockDevice backing_device(int fd, const std::string& sysfs) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno("stat fd " + std::to_string(fd));
  uint32_t maj = ::major(st.st_dev), min = ::minor(st.st_dev);
  if (maj == 0)
    throw Error(Errc::not_supported, "the file system is not on a block device (st_dev " + std::to_string(maj) +
                                         ":" + std::to_string(min) +
                                         ": tmpfs, overlayfs, btrfs, NFS or another virtual device)");
  return block_device(maj, min, sysfs);
}

BlockDevice backing_device(const std::string& path, const std::string& sysfs) {
  const Fd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
  if (!fd) throw_errno("open " + path);
  return backing_device(fd.get(), sysfs);
}

}  // namespace aisio::extents
