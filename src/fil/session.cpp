#include "fil/session.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <filesystem>

#include "common/error.hpp"
#include "emu/controller.hpp"
#include "io/nvme_block_reader.hpp"
#include "tools/target.hpp"

namespace aisio::fil {

namespace fs = std::filesystem;

namespace {
struct ServedImage {
  std::shared_ptr<emu::SoftController> device;
  std::shared_ptr<nvme::Controller> ctrl;
  ~ServedImage() {
    ctrl.reset();  // orderly shutdown while the device still answers
    device.reset();
  }
};
}  // namespace

std::shared_ptr<ImageController> serve_image(const std::string& path, uint32_t lba_size, unsigned workers) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw_errno("image " + path);
  if (!S_ISREG(st.st_mode)) throw Error(Errc::invalid_argument, "image " + path + ": not a regular file");
  emu::EmuConfig cfg;
  cfg.serial = "AISIOIMG0001";
  cfg.model = "aisio software NVMe controller (image)";
  cfg.workers = std::max(1u, workers);
  cfg.namespaces[0].size_bytes = uint64_t(st.st_size) / lba_size * lba_size;
  cfg.namespaces[0].lba_size = lba_size;
  cfg.namespaces[0].backing = emu::Backing::file;
  cfg.namespaces[0].path = path;
  auto both = std::make_shared<ServedImage>();
  both->device = std::make_shared<emu::SoftController>(cfg);
  both->device->start();
  both->ctrl = nvme::Controller::create(both->device->bar0("image:" + path), both->device->dma());
  auto ic = std::make_shared<ImageController>();
  ic->ctrl = std::shared_ptr<nvme::Controller>(both, both->ctrl.get());  // aliasing: owns both
  return ic;
}

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

Session::~Session() {
  extents_.reset();
  xfs_.reset();
  access_.reset();
  homid_.reset();
  ctrl_.reset();
  target_keep_.reset();
  image_ctrl_.reset();
}

void Session::open_device() {
  if (access_) return;
  if (spec_.via == "homid") {
    homid_ = HomidLink::open(spec_.homid_socket, spec_.homid_controller, spec_.homid_function);
    target_ = homid_->describe();
    access_ = homid_->access(spec_.nsid);
    return;
  }
  if (!spec_.via.empty()) throw Error(Errc::invalid_argument, "--via '" + spec_.via + "': only homid is known");
  if (spec_.ctrl) {
    ctrl_ = spec_.ctrl;
    image_ = spec_.ctrl_image;
    target_ = image_.empty() ? ctrl_->describe() : "image:" + image_;
    access_ = io::access_of(ctrl_, spec_.nsid);
    return;
  }
  target_ = spec_.target;
  if (target_.empty()) {
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
  if (target_.rfind("image:", 0) == 0) {
    image_ = target_.substr(6);
    image_ctrl_ = serve_image(image_, spec_.lba_size, spec_.emu_workers);
    ctrl_ = image_ctrl_->ctrl;
  } else {
    auto t = tools::open_target(target_);
    ctrl_ = t.ctrl;
    target_keep_ = t.keep;
  }
  access_ = io::access_of(ctrl_, spec_.nsid);  // throws for an inactive namespace
}

std::shared_ptr<nvme::Controller> Session::controller() {
  open_device();
  return ctrl_;
}

const io::NvmeAccess& Session::access() {
  open_device();
  return *access_;
}

std::shared_ptr<io::ExtentSource> Session::extent_source() {
  if (extents_) return extents_;
  std::string mode = spec_.extents;
  if (mode == "auto") mode = local_ ? (spec_.via == "homid" ? "homid" : "fiemap") : "xfs";
  if (mode == "homid") {
    if (!local_) throw Error(Errc::invalid_argument, "--extents homid needs DIR mounted here; " + dir_ + " is not");
    if (!homid_) homid_ = HomidLink::open(spec_.homid_socket, spec_.homid_controller, spec_.homid_function);
    std::error_code ec;
    auto root = fs::canonical(dir_, ec);
    extents_ = homid_->extents(ec ? dir_ : root.string(), spec_.nsid);
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
    auto reader = std::make_shared<io::NvmeBlockReader>(*access_, off);
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
  if (!manifest_path_.empty()) {
    manifest_ = Manifest::load(manifest_path_);
    manifest_from_ = manifest_path_;
  } else if (local_) {
    manifest_path_ = (fs::path(dir_) / kManifestName).string();
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

std::unique_ptr<io::Path> Session::make_path(const std::string& name, const io::EngineOptions& eo) {
  const io::PathInfo* info = io::find_path_info(name);
  if (!info) {
    std::string names;
    for (const auto& p : io::known_paths()) names += (names.empty() ? "" : ", ") + p.name;
    throw Error(Errc::invalid_argument, "unknown path '" + name + "' (known: " + names + ")");
  }
  if (!info->built) throw Error(Errc::not_supported, info->why_not);
  if (name == "unvme") {
    open_device();
    return io::make_unvme_path(*access_, extent_source(), eo, "unvme");
  }
  if (!local_)
    throw Error(Errc::not_supported, "needs the file system mounted here (" + dir_ + " is not a directory)");
  if (name == "posix") return io::make_posix_path(dir_, eo);
  if (name == "posix-direct") return io::make_posix_direct_path(dir_, eo);
  if (name == "io_uring" || name == "io_uring-buffered") {
    std::string why;
    if (!io::uring_available(&why)) throw Error(Errc::not_supported, why);
    return io::make_uring_path(dir_, eo, name == "io_uring");
  }
  throw Error(Errc::not_supported, "path '" + name + "' has no implementation");
}

}  // namespace aisio::fil
