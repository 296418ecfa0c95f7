#include "file.hpp"

#include <fmt/format.h>
#include <pybind11/stl.h>

#include "common/error.hpp"
#include "errors.hpp"
#include "sinks.hpp"
#include "trace.hpp"

namespace aisio::py {

namespace pyb = pybind11;

Volume::Volume(const VolumeOptions& o) : o_(o) {
  fil::UnvmeSpec spec;
  spec.nsid = o.nsid;
  spec.fs_offset = o.fs_offset;
  if (o.ctrl) {
    keep_ = o.ctrl->target();
    if (!keep_) throw Error(Errc::invalid_argument, "the controller " + o.ctrl->handle() + " is closed");
    spec.opened = keep_;
  }
  if (o.via == "xfs") {
    if (!o.ctrl)
      throw Error(Errc::invalid_argument,
                  "via='xfs' reads an unmounted file system on a controller: give controller= (a handle such as "
                  "image:/path/to/fs.img or a PCI address, or an aisio.Controller)");
    spec.extents = "xfs";
    spec.fs_root = o.dir;  // the directory inside the file system (never a directory here)
  } else if (o.via == "fiemap") {
    spec.extents = "fiemap";
  } else if (o.via == "homid") {
    spec.extents = "homid";
    if (!o.ctrl) {
      spec.via = "homid";
      spec.homid_socket = o.homid_socket;
      spec.homid_controller = o.homid_controller;
    }
  } else {
    throw Error(Errc::invalid_argument, "via='" + o.via + "': use fiemap, xfs or homid");
  }
  io::ReadOptions eo;
  eo.qd = o.qd;
  eo.io_size = o.io_size;
  eo.poll = io::parse_poll_mode(o.poll);
  s_ = std::make_unique<fil::Session>(o.dir, spec);
  path_ = s_->make_path("unvme", eo);
  src_ = s_->extent_source();
}

Volume::~Volume() {
  idle_.clear();  // readers (queue pairs) before the path, the session and the controller
  path_.reset();
  src_.reset();
  s_.reset();
}

std::string Volume::describe() { return path_->describe(); }

uint64_t Volume::size(const std::string& rel) { return src_->resolve(rel).size; }

std::unique_ptr<io::FileReader> Volume::lease() {
  {
    std::lock_guard lk(mu_);
    if (!idle_.empty()) {
      auto r = std::move(idle_.back());
      idle_.pop_back();
      return r;
    }
  }
  uint32_t n;
  {
    std::lock_guard lk(mu_);
    n = made_++;
  }
  return path_->make_reader(n);
}

void Volume::give_back(std::unique_ptr<io::FileReader> r) {
  std::lock_guard lk(mu_);
  idle_.push_back(std::move(r));
}

uint64_t Volume::pread(const std::string& rel, const Dest& d, uint64_t off, uint64_t len) {
  IoTrace trace;
  io::FileTask t{0, rel, 0, off, std::min<uint64_t>(len, d.n)};
  RangeSink sink(d, off);
  auto r = lease();
  r->read(std::span<const io::FileTask>(&t, 1), sink);  // throws only when the reader itself failed
  give_back(std::move(r));
  if (!sink.error.empty()) throw_file_error(sink.error);
  return sink.got;
}

void register_files(pyb::module_& m) {
  pyb::class_<Volume, std::shared_ptr<Volume>>(
      m, "_Volume", "Internal: a directory (or a file system) read through one controller; aisio.File uses it.")
      .def(pyb::init([](std::shared_ptr<Controller> ctrl, const std::string& via, const std::string& dir,
                        uint32_t nsid, std::optional<uint64_t> fs_offset, const std::string& homid_socket,
                        const std::string& homid_controller, uint32_t qd, size_t io_size, const std::string& poll) {
             VolumeOptions o;
             o.ctrl = std::move(ctrl);
             o.via = via;
             o.dir = dir;
             o.nsid = nsid;
             o.fs_offset = fs_offset;
             o.homid_socket = homid_socket;
             o.homid_controller = homid_controller;
             o.qd = qd;
             o.io_size = io_size;
             o.poll = poll;
             pyb::gil_scoped_release nogil;
             return std::make_shared<Volume>(o);
           }),
           pyb::arg("controller").none(true), pyb::arg("via"), pyb::arg("dir"), pyb::arg("nsid") = 1,
           pyb::arg("fs_offset") = pyb::none(), pyb::arg("homid_socket") = "", pyb::arg("homid_controller") = "0",
           pyb::arg("qd") = 32, pyb::arg("io_size") = 256 << 10, pyb::arg("poll") = "spin")
      .def("describe", [](Volume& v) { return v.describe(); })
      .def("size", [](Volume& v, const std::string& rel) {
             pyb::gil_scoped_release nogil;
             return v.size(rel);
           })
      .def("pread", [](Volume& v, const std::string& rel, pyb::object buf, std::optional<uint64_t> size,
                       uint64_t file_offset) {
             BufferRef b(buf, true);
             const uint64_t want = size.value_or(b.size());
             if (want > b.size())
               throw Error(Errc::invalid_argument,
                           fmt::format("size {} is larger than the buffer ({} bytes)", want, b.size()));
             Dest d{b.data(), size_t(want), b.gpu(), b.device()};
             pyb::gil_scoped_release nogil;
             return v.pread(rel, d, file_offset, want);
           },
           pyb::arg("rel"), pyb::arg("buf"), pyb::arg("size") = pyb::none(), pyb::arg("file_offset") = 0);
}

}  // namespace aisio::py
