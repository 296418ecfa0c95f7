// Files read through our driver: a Volume is one place files are found (a directory on
// a mounted file system whose extents come from FIEMAP or homid, or an unmounted XFS
// file system decoded on the controller's namespace) together with the unvme path of
// `aisio fil run` over it (fil::Session, io::make_unvme_path). Reads lease a FileReader
// (a queue pair with qd chunks in flight) from a pool, so threads read in parallel.
#pragma once
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "buffers.hpp"
#include "controller.hpp"
#include "fil/session.hpp"
#include "io/engine.hpp"

namespace aisio::py {

struct VolumeOptions {
  std::shared_ptr<Controller> ctrl;  // null: fiemap finds the image behind the loop device; homid: the daemon
  std::string via = "xfs";           // fiemap, xfs, homid
  std::string dir;                   // fiemap/homid: a directory here; xfs: a directory inside the file system
  uint32_t nsid = 1;
  std::optional<uint64_t> fs_offset;  // file system start in the namespace, bytes
  std::string homid_socket, homid_controller = "0";
  uint32_t qd = 32;
  size_t io_size = 256 << 10;
  std::string poll = "spin";          // spin or hybrid (io/engine.hpp)
};

// Where one file's bytes go.
struct Dest {
  uint8_t* p = nullptr;
  size_t n = 0;
  bool gpu = false;
  int device = 0;
};

class Volume {
 public:
  explicit Volume(const VolumeOptions& o);
  ~Volume();
  // Size of `rel` (a path under dir); throws aisio::Error for a file that is not there.
  uint64_t size(const std::string& rel);
  // Reads [off, off + len) of rel (clipped at EOF) to d; returns the bytes read. No GIL.
  uint64_t pread(const std::string& rel, const Dest& d, uint64_t off, uint64_t len);

  // Many files on `threads` readers at once; each file lands in a new Storage (host or
  // GPU device `device`), or its error is recorded. No GIL.
  struct Item {
    std::string rel;
    std::shared_ptr<Storage> data;
    std::string error;
  };
  void read_many(std::vector<Item>& items, uint32_t threads, bool gpu, int device);
  std::string describe();

 private:
  std::unique_ptr<io::FileReader> lease();
  void give_back(std::unique_ptr<io::FileReader> r);

  VolumeOptions o_;
  std::shared_ptr<target::Target> keep_;  // the controller outlives the session's use of it
  std::unique_ptr<fil::Session> s_;
  std::shared_ptr<io::ExtentSource> src_;
  std::unique_ptr<io::FileBackend> path_;
  std::mutex mu_;
  std::vector<std::unique_ptr<io::FileReader>> idle_;
  uint32_t made_ = 0;
};

void register_files(pybind11::module_& m);
void register_batch(pybind11::module_& m);
void register_dataset(pybind11::module_& m);

}  // namespace aisio::py
