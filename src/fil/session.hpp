// What `aisio fil run` reads and through what: the data set (a mounted directory, or a
// directory inside an unmounted XFS file system that only our driver reaches), its
// manifest, and for the unvme path the controller and the extent source.
//
// unvme targets: any controller handle (target/target.hpp). The default when DIR is on
// a loop device: image:FILE, its backing file; --via homid is homid:SOCKET/CONTROLLER.
// extents: auto (fiemap for a mounted DIR, homid through homid, else xfs), fiemap, xfs,
// homid.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/tcp.hpp"
#include "fil/manifest.hpp"
#include "io/engine.hpp"
#include "io/extent_source.hpp"
#include "io/unvme.hpp"
#include "target/target.hpp"

namespace aisio::fil {

struct UnvmeSpec {
  std::string target;             // a handle; "" = auto (the image behind DIR's loop device)
  std::string extents = "auto";   // auto, fiemap, xfs, homid
  std::string via;                // "" (this process drives the controller) or "homid"
  std::string homid_socket;       // --via homid: "" = $HOMID_SOCKET or /run/homid/homid.sock
  std::string homid_controller = "0";  // name or index
  std::string homid_function;     // --via homid: "vf" = an SR-IOV VF granted by homid
  uint32_t nsid = 1;
  std::optional<uint64_t> fs_offset;  // file system start in the namespace, bytes
  std::string fs_root;            // xfs: DIR's path inside the file system (default: derived)
  uint32_t lba_size = 512;        // image: targets
  unsigned emu_workers = 1;       // image: targets
  // A target opened by the caller (the demo serves its image once and shares it).
  std::shared_ptr<target::Target> opened;
};

class Session {
 public:
  Session(std::string dir, UnvmeSpec spec, std::string manifest_path = "");
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  bool local() const { return local_; }            // DIR is a directory here
  const std::string& dir() const { return dir_; }
  const Manifest& manifest();                       // loaded on first use
  const std::string& manifest_source() const { return manifest_from_; }

  // The named path, ready to run; Errc::not_supported (with the reason) when it cannot
  // run here: not built, needs a mounted DIR, no controller, ...
  std::unique_ptr<io::FileBackend> make_path(const std::string& name, const io::ReadOptions& eo);

  // The target the unvme path uses (opened on first use).
  const std::shared_ptr<target::Target>& target();
  // The driver's controller; null through homid.
  std::shared_ptr<nvme::Controller> controller() { return target()->controller(); }
  const backends::UnvmeTarget& access();
  std::string unvme_target() const { return target_; }
  std::string image_file() const { return image_; }  // "" unless an image: target
  std::shared_ptr<io::ExtentSource> extent_source();
  std::vector<std::string> notes;

 private:
  void open_device();
  std::string homid_handle(bool vf) const;
  std::string dir_;
  UnvmeSpec spec_;
  std::string manifest_path_;
  bool local_ = false;
  std::optional<Manifest> manifest_;
  std::string manifest_from_;
  std::string target_, image_;
  std::shared_ptr<target::Target> tgt_;
  std::shared_ptr<target::Target> homid_target_;  // --extents homid beside a controller of our own
  std::optional<backends::UnvmeTarget> access_;
  std::optional<backends::TcpTarget> tcp_;  // a tcp:// target: the unvme path runs over NVMe/TCP
  std::shared_ptr<io::ExtentSource> extents_;
  std::shared_ptr<io::XfsSource> xfs_;
};

// The mount point of the file system holding `dir`, and dir's path inside it.
std::string mount_point(const std::string& dir, std::string* inside = nullptr);

}  // namespace aisio::fil
