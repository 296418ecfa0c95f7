#include "fil/session.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <filesystem>

#include "backends/registry.hpp"
#include "common/error.hpp"
#include "homi/client.hpp"
#include "io/nvme_block_reader.hpp"
#include "io/tcp_path.hpp"
#include "fil/homid.hpp"

namespace aisio::fil {

namespace fs = std::filesystem;

std::string mount_point(const std::string& dir, std::string* inside) {
  std::error_code ec;
  fs::path p = fs::canonical(dir, ec);
  if (ec) throw Error(Errc::invalid_argument, dir + ": " + ec.message());
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) throw_errno("stat " + p.string());
  fs::path cur = p;
  while (cur.has_parent_path() && cur != cur.root_path()) {
    struct stat up {};
    if (::stat(cur.parent_path().c_str(), &up) != 0 || up.st_dev != st.st_dev) break;
    cur = cur.parent_path();
  }
  if (inside) {
    auto rel = fs::relative(p, cur).string();
    *inside = rel == "." ? "/" : "/" + rel;
  }
  return cur.string();
}

Session::Session(std::string dir, UnvmeSpec spec, std::string manifest_path)
    : dir_(std::move(dir)), spec_(std::move(spec)), manifest_path_(std::move(manifest_path)) {
  local_ = fs::is_directory(dir_);
}

// The homid handle --via homid names: homid[-vf]:SOCKET/CONTROLLER.
std::string Session::homid_handle(bool vf) const {
  return (vf ? "homid-vf:" : "homid:") +
         (spec_.homid_socket.empty() ? homic::default_socket() : spec_.homid_socket) + "/" +
         (spec_.homid_controller.empty() ? "0" : spec_.homid_controller);
}

void Session::open_device() {
  if (tgt_) return;
  if (spec_.opened) {
    tgt_ = spec_.opened;
  } else {
    target_ = spec_.target;
    if (spec_.via == "homid") {
      if (!spec_.homid_function.empty() && spec_.homid_function != "queue" && spec_.homid_function != "vf")
        throw Error(Errc::invalid_argument, "--function '" + spec_.homid_function + "': queue (default) or vf");
      target_ = homid_handle(spec_.homid_function == "vf");
    } else if (!spec_.via.empty()) {
      throw Error(Errc::invalid_argument, "--via '" + spec_.via + "': only homid is known");
    } else if (target_.empty()) {
      if (!local_)
        throw Error(Errc::invalid_argument,
                    "unvme: " + dir_ + " is not a directory here: give --target (image:PATH, emu:NAME or a PCI "
                    "address) for the controller whose namespace holds the file system");
      auto mi = io::mount_info(dir_);
      if (mi.backing_file.empty())
        throw Error(Errc::not_supported,
                    fmt::format("unvme: {} is on {}, which no controller of ours serves from here; give --target "
                                "(a PCI address bound to uio/vfio after unmounting, or emu:NAME)",
                                dir_, mi.device));
      target_ = "image:" + mi.backing_file;
    }
    target::OpenOptions oo;
    oo.image_lba_size = spec_.lba_size;
    oo.emu_workers = spec_.emu_workers;
    oo.client_name = "aisio fil";
    tgt_ = target::open(target_, oo);
  }
  target_ = tgt_->describe();
  if (target_.starts_with("image:")) image_ = target_.substr(6);
  access_ = backends::target_of(tgt_, spec_.nsid);  // throws for an inactive namespace
  if (tgt_->tcp()) tcp_ = backends::tcp_target_of(tgt_, spec_.nsid);  // NVMe/TCP: its own queues
}

const std::shared_ptr<target::Target>& Session::target() {
  open_device();
  return tgt_;
}

const backends::UnvmeTarget& Session::access() {
  open_device();
  return *access_;
}

std::shared_ptr<io::ExtentSource> Session::extent_source() {
  if (extents_) return extents_;
  std::string mode = spec_.extents;
  const bool via_homid =
      spec_.via == "homid" || spec_.target.starts_with("homid") || (spec_.opened && bool(spec_.opened->homid()));
  if (mode == "auto") mode = local_ ? (via_homid ? "homid" : "fiemap") : "xfs";
  if (mode == "homid") {
    if (!local_) throw Error(Errc::invalid_argument, "--extents homid needs DIR mounted here; " + dir_ + " is not");
    open_device();
    auto homid = tgt_->homid();
    if (!homid) {  // queues of our own, extents from homid's controller
      homid_target_ = target::open(homid_handle(false), {.client_name = "aisio fil"});
      homid = homid_target_->homid();
    }
    std::error_code ec;
    auto root = fs::canonical(dir_, ec);
    extents_ = homid_extents(homid, ec ? dir_ : root.string(), spec_.nsid);
    return extents_;
  }
  if (mode == "fiemap") {
    if (!local_) throw Error(Errc::invalid_argument, "--extents fiemap needs DIR mounted here; " + dir_ + " is not");
    open_device();
    auto mi = io::mount_info(dir_);
    if (!image_.empty()) {
      std::error_code e1, e2;
      auto a = fs::canonical(mi.backing_file.empty() ? mi.device : mi.backing_file, e1);
      auto b = fs::canonical(image_, e2);
      if (e1 || e2 || a != b)
        throw Error(Errc::invalid_argument,
                    fmt::format("unvme: {} is on {} ({}), but the controller serves {}: FIEMAP offsets would point "
                                "into the wrong namespace",
                                dir_, mi.device, mi.backing_file.empty() ? "no backing file" : mi.backing_file,
                                image_));
    }
    extents_ = std::make_shared<io::FiemapSource>(dir_, spec_.fs_offset.value_or(mi.device_offset));
    return extents_;
  }
  if (mode == "xfs") {
    open_device();
    uint64_t off = spec_.fs_offset.value_or(0);
    std::shared_ptr<extents::BlockReader> reader;
    if (tcp_)
      reader = std::make_shared<io::TcpBlockReader>(*tcp_, off);
    else
      reader = std::make_shared<io::NvmeBlockReader>(*access_, off);
    std::string root = spec_.fs_root;
    if (root.empty()) {
      if (local_) {
        mount_point(dir_, &root);
        notes.push_back("the XFS decoder reads what is on disk: unmount (or freeze) the file system first");
      } else {
        root = dir_;
      }
    }
    xfs_ = std::make_shared<io::XfsSource>(reader, root, off);
    extents_ = xfs_;
    return extents_;
  }
  throw Error(Errc::invalid_argument, "--extents '" + spec_.extents + "': use auto, fiemap, xfs or homid");
}

const Manifest& Session::manifest() {
  if (manifest_) return *manifest_;
  if (manifest_path_.empty() && local_) manifest_path_ = (fs::path(dir_) / kManifestName).string();
  if (!manifest_path_.empty()) {
    manifest_ = Manifest::load(manifest_path_);
    manifest_from_ = manifest_path_;
  } else {
    extent_source();
    if (!xfs_)
      throw Error(Errc::invalid_argument, dir_ + " is not a directory here: give --manifest or use --extents xfs");
    auto bytes = xfs_->read_file(kManifestName);
    manifest_ = Manifest::parse(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    manifest_from_ = fmt::format("{}/{} inside the file system, read through the XFS decoder on {}", dir_,
                                 kManifestName, access_->describe);
  }
  return *manifest_;
}

std::unique_ptr<io::FileBackend> Session::make_path(const std::string& name, const io::ReadOptions& eo) {
  const backends::Registry reg;  // the GPU paths are not made here (gpu/fil_gpu.hpp)
  const backends::FilePathInfo* info = reg.find_file_path(name);
  if (!info) {
    std::string names;
    for (const auto& p : reg.file_paths()) names += (names.empty() ? "" : ", ") + p.name;
    throw Error(Errc::invalid_argument, "unknown path '" + name + "' (known: " + names + ")");
  }
  if (!info->built) throw Error(Errc::not_supported, info->why_not);
  if (name == "unvme") {
    open_device();
    if (tcp_) return io::make_tcp_path(*tcp_, extent_source(), eo, "unvme");
    return io::make_unvme_path(*access_, extent_source(), eo, "unvme");
  }
  if (!local_)
    throw Error(Errc::not_supported, "needs the file system mounted here (" + dir_ + " is not a directory)");
  return io::make_kernel_path(name, dir_, eo);
}

}  // namespace aisio::fil
