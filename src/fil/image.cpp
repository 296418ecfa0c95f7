#include "fil/image.hpp"

#include <fmt/format.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/error.hpp"

namespace aisio::fil {

namespace fs = std::filesystem;

int run_shell(const std::string& cmd, std::string* out) {
  std::string full = "( " + cmd + " ) 2>&1";
  FILE* f = ::popen(full.c_str(), "r");
  if (!f) return -1;
  std::array<char, 4096> buf;
  size_t n;
  std::string text;
  while ((n = fread(buf.data(), 1, buf.size(), f)) > 0) text.append(buf.data(), n);
  int st = ::pclose(f);
  if (out) *out = text;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

bool have_tool(const std::string& name) {
  return run_shell("command -v " + shell_quote(name) + " || test -x /sbin/" + name + " || test -x /usr/sbin/" + name) ==
         0;
}

std::string mkfs_xfs(const std::string& target, const std::string& extra) { return mkfs("xfs", target, extra); }

std::string mkfs(const std::string& type, const std::string& target, const std::string& extra) {
  // TEST_DIR/TEST_DEV/QA_CHECK_FS: xfsprogs >= 5.19 refuses file systems under 300 MB
  // unless it believes it runs under fstests.
  const std::string cmd = type == "xfs" ? "TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=xfs mkfs.xfs -q -f "
                                        : "mkfs." + type + " -q -F ";
  std::string out;
  int rc = run_shell("PATH=$PATH:/sbin:/usr/sbin " + cmd + extra + " " + shell_quote(target), &out);
  return rc == 0 ? "" : (out.empty() ? "mkfs." + type + " failed" : out);
}

bool holds_xfs(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[4] = {};
  return f.read(magic, 4) && std::string(magic, 4) == "XFSB";
}

namespace {

void proto_dir(std::ofstream& o, const fs::path& dir, int depth) {
  std::vector<fs::directory_entry> entries{fs::directory_iterator(dir), fs::directory_iterator{}};
  std::sort(entries.begin(), entries.end(), [](auto& a, auto& b) { return a.path().filename() < b.path().filename(); });
  std::string ind(size_t(depth), ' ');
  for (const auto& e : entries) {
    std::string name = e.path().filename().string();
    if (name.find_first_of(" \t\n") != std::string::npos)
      throw Error(Errc::invalid_argument, "protofile: file name with white space: " + e.path().string());
    if (e.is_directory()) {
      o << ind << name << " d--755 0 0\n";
      proto_dir(o, e.path(), depth + 1);
      o << ind << "$\n";
    } else if (e.is_regular_file()) {
      o << ind << name << " ---644 0 0 " << fs::absolute(e.path()).string() << "\n";
    }
  }
}

}  // namespace

void write_protofile(const std::string& proto, const std::string& src, const std::string& name) {
  std::ofstream o(proto);
  if (!o) throw Error(Errc::system, "cannot write protofile " + proto);
  o << "/dev/null\n0 0\nd--755 0 0\n";
  o << " " << name << " d--755 0 0\n";
  proto_dir(o, src, 2);
  o << " $\n$\n";
  if (!o) throw Error(Errc::system, "cannot write protofile " + proto);
}

std::unique_ptr<DatasetImage> DatasetImage::create(const ImageOptions& o) {
  if (o.mode != "auto" && o.mode != "mount" && o.mode != "protofile")
    throw Error(Errc::invalid_argument, "image mode '" + o.mode + "': use auto, mount or protofile");
  const std::string fs_type = o.fs == "auto" ? (have_tool("mkfs.xfs") ? "xfs" : "ext4") : o.fs;
  if (fs_type != "xfs" && fs_type != "ext4")
    throw Error(Errc::invalid_argument, "file system '" + o.fs + "': use xfs, ext4 or auto");
  const bool keep_fs = !o.device.empty() && o.keep_xfs && fs_type == "xfs" && holds_xfs(o.device);
  if (!keep_fs && !have_tool("mkfs." + fs_type))
    throw Error(Errc::not_supported, fs_type == "xfs" ? "mkfs.xfs not found: install xfsprogs (apt-get install xfsprogs)"
                                                      : "mkfs.ext4 not found: install e2fsprogs");
  auto d = std::unique_ptr<DatasetImage>(new DatasetImage);
  if (o.workdir.empty()) {
    const char* base = getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/aisio-fil-XXXXXX";
    std::string dir = tmpl;  // mkdtemp rewrites the XXXXXX even when it fails
    if (!::mkdtemp(dir.data())) throw_errno("mkdtemp " + tmpl);
    d->workdir_ = dir;
    d->own_workdir_ = true;
  } else {
    d->workdir_ = o.workdir;
    fs::create_directories(d->workdir_);
  }
  if (!o.device.empty()) {
    d->image_ = o.device;
    d->own_image_ = false;
  } else {
    d->image_ = o.image.empty() ? d->workdir_ + "/fil.img" : o.image;
    d->own_image_ = o.image.empty();
    // Size: the planned data plus room for metadata and allocation slack.
    uint64_t size = o.image_size;
    if (!size) {
      uint64_t data = plan_dataset(o.gen).total_bytes();
      size = std::max<uint64_t>(320ull << 20, data + data / 3 + (64ull << 20));
      size = (size + (1 << 20) - 1) & ~uint64_t((1 << 20) - 1);
    }
    std::error_code ec;
    fs::remove(d->image_, ec);
    std::ofstream(d->image_).close();
    fs::resize_file(d->image_, size, ec);
    if (ec) throw Error(Errc::system, "cannot create image " + d->image_ + ": " + ec.message());
  }

  // A device, another file system than XFS or mode mount: mounted or nothing.
  const bool must_mount = o.mode == "mount" || !o.device.empty() || fs_type != "xfs";
  std::string why_not_mount = ::geteuid() == 0 ? "" : "not root";
  if (must_mount || (o.mode == "auto" && ::geteuid() == 0)) {
    if (!keep_fs)
      if (auto e = mkfs(fs_type, d->image_); !e.empty()) throw Error(Errc::system, "mkfs." + fs_type + ": " + e);
    std::string mnt = o.mount_dir.empty() ? d->workdir_ + "/mnt" : o.mount_dir, out;
    fs::create_directories(mnt);
    const bool loop = fs::is_regular_file(d->image_);
    int rc = run_shell("mount -t " + fs_type + " -o " + (loop ? "loop," : "") + "noatime " + shell_quote(d->image_) +
                           " " + shell_quote(mnt),
                       &out);
    if (rc == 0) {
      d->mount_dir_ = mnt;
      d->data_dir_ = mnt + "/data";
      d->mode_ = keep_fs ? "the XFS on " + d->image_
                 : loop  ? (fs_type == "xfs" ? "loop mount" : "loop mount (" + fs_type + ")")
                         : "mkfs." + fs_type + " on " + d->image_;
      std::error_code ec;
      if (keep_fs) fs::remove_all(d->data_dir_, ec);  // a data set of an earlier run
      d->gen_ = generate(d->data_dir_, o.gen);
      ::sync();
      return d;
    }
    if (must_mount) throw Error(Errc::system, "mount " + d->image_ + ": " + out);
    why_not_mount = "mount -o loop failed: " + out;
    while (!why_not_mount.empty() && why_not_mount.back() == '\n') why_not_mount.pop_back();
  }
  // Protofile: generate into a plain directory, then mkfs.xfs -p copies it in.
  std::string src = d->workdir_ + "/src";
  d->gen_ = generate(src, o.gen);
  std::string proto = d->workdir_ + "/proto.txt";
  write_protofile(proto, src, "data");
  if (auto e = mkfs_xfs(d->image_, "-p " + shell_quote(proto)); !e.empty())
    throw Error(Errc::system, "mkfs.xfs -p: " + e);
  d->data_dir_ = src;
  d->mode_ = "protofile (" + why_not_mount + "; holes and fragmentation are not kept)";
  return d;
}

void DatasetImage::umount() {
  if (mount_dir_.empty()) return;
  for (int i = 0; i < 20; ++i) {
    if (run_shell("umount " + shell_quote(mount_dir_)) == 0) break;
    ::usleep(100000);
    if (i == 19) run_shell("umount -l " + shell_quote(mount_dir_));
  }
  mount_dir_.clear();
  data_dir_.clear();
}

DatasetImage::~DatasetImage() {
  umount();
  if (keep_) return;
  std::error_code ec;
  if (own_workdir_) {
    fs::remove_all(workdir_, ec);  // a device named by the caller is never inside it
  } else {
    if (own_image_) fs::remove(image_, ec);
    fs::remove_all(workdir_ + "/src", ec);
    fs::remove(workdir_ + "/proto.txt", ec);
    fs::remove(workdir_ + "/mnt", ec);
  }
}

}  // namespace aisio::fil
