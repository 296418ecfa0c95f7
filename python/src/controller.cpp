#include "controller.hpp"

#include <fmt/format.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>

#include "buffers.hpp"
#include "common/error.hpp"
#include "tools/identify_report.hpp"
#include "trace.hpp"

namespace aisio::py {

namespace pyb = pybind11;

namespace {
constexpr size_t kBounce = 1u << 20;  // bytes a lane moves per round trip
constexpr size_t kIdleLanes = 8;      // lanes kept for reuse

void check(const nvme::Completion& c, const char* what, uint64_t slba, uint32_t nlb) {
  if (c.ok()) return;
  if (c.host != nvme::HostStatus::none)
    throw Error(Errc::timeout, fmt::format("{} of {} blocks at LBA {}: {}", what, nlb, slba, c.describe()));
  throw Error(c.status, fmt::format("{} of {} blocks at LBA {}", what, nlb, slba));
}

// A nlohmann JSON value as Python objects (the identify report is built as JSON once).
pyb::object to_py(const nlohmann::ordered_json& j) {
  if (j.is_object()) {
    pyb::dict d;
    for (auto it = j.begin(); it != j.end(); ++it) d[pyb::str(it.key())] = to_py(it.value());
    return d;
  }
  if (j.is_array()) {
    pyb::list l;
    for (const auto& v : j) l.append(to_py(v));
    return l;
  }
  if (j.is_string()) return pyb::str(j.get<std::string>());
  if (j.is_boolean()) return pyb::bool_(j.get<bool>());
  if (j.is_number_unsigned()) return pyb::int_(j.get<uint64_t>());
  if (j.is_number_integer()) return pyb::int_(j.get<int64_t>());
  if (j.is_number_float()) return pyb::float_(j.get<double>());
  return pyb::none();
}
}  // namespace

Controller::Controller(const std::string& handle, const target::OpenOptions& o) : handle_(handle) {
  t_ = target::open(handle, o);
}

Controller::~Controller() { close(); }

void Controller::close() {
  std::vector<std::unique_ptr<Lane>> lanes;
  std::shared_ptr<target::Target> t;
  {
    std::lock_guard lk(mu_);
    lanes.swap(idle_);
    t.swap(t_);
  }
  lanes.clear();  // queue pairs go before the controller
}

std::shared_ptr<target::Target> Controller::live() const {
  std::lock_guard lk(mu_);
  if (!t_) throw Error(Errc::invalid_argument, "the controller " + handle_ + " is closed");
  return t_;
}

pyb::dict Controller::identify() const {
  auto t = live();
  pyb::dict d;
  if (auto c = t->controller()) {
    d = to_py(tools::identify_json(*c));
  } else {  // queue pairs from homid: what the grant says
    d["controller"] = pyb::dict();
  }
  d["handle"] = handle_;
  d["describe"] = t->describe();
  d["model"] = t->model();
  d["page_size"] = t->page_size();
  d["max_transfer"] = t->max_transfer();
  d["max_queue_entries"] = t->max_queue_entries();
  return d;
}

pyb::list Controller::namespaces() const {
  auto t = live();
  std::vector<uint32_t> ids;
  if (auto c = t->controller())
    for (const auto& ns : c->namespaces()) ids.push_back(ns.nsid);
  else
    ids.push_back(1);  // homid grants queue pairs of namespace 1
  pyb::list l;
  for (uint32_t id : ids) {
    const auto g = t->ns(id);
    pyb::dict d;
    d["nsid"] = g.nsid;
    d["lba_size"] = g.lba_size;
    d["blocks"] = g.blocks;
    d["bytes"] = g.bytes();
    l.append(d);
  }
  return l;
}

std::unique_ptr<Controller::Lane> Controller::lease(uint32_t nsid) {
  auto t = live();
  {
    std::lock_guard lk(mu_);
    for (auto it = idle_.begin(); it != idle_.end(); ++it)
      if ((*it)->nsid == nsid) {
        auto l = std::move(*it);
        idle_.erase(it);
        return l;
      }
  }
  auto l = std::make_unique<Lane>();
  l->t = t;
  l->nsid = nsid;
  l->qp = t->create_queue_pair({.depth = 32}, nsid);
  l->buf = t->dma()->alloc(kBounce, t->page_size());
  return l;
}

void Controller::give_back(std::unique_ptr<Lane> l) {
  std::lock_guard lk(mu_);
  if (t_ && idle_.size() < kIdleLanes) idle_.push_back(std::move(l));
}

void Controller::read(uint32_t nsid, uint64_t slba, uint32_t nlb, uint8_t* p, size_t n) {
  IoTrace trace;
  const auto g = live()->ns(nsid);
  if (uint64_t(nlb) * g.lba_size > n)
    throw Error(Errc::invalid_argument,
                fmt::format("the buffer holds {} bytes; {} blocks of {} bytes need {}", n, nlb, g.lba_size,
                            uint64_t(nlb) * g.lba_size));
  auto l = lease(nsid);
  // A round trip is split into commands of at most MDTS, all in flight at once: keep
  // it within what the queue holds.
  const size_t chunk = std::min(kBounce, l->qp->max_transfer() * l->qp->capacity());
  const uint32_t per = uint32_t(std::max<size_t>(chunk / g.lba_size, 1));
  for (uint32_t done = 0; done < nlb;) {
    const uint32_t k = std::min(per, nlb - done);
    check(l->qp->read(nsid, slba + done, k, l->buf), "Read", slba + done, k);
    std::memcpy(p + size_t(done) * g.lba_size, l->buf.data(), size_t(k) * g.lba_size);
    done += k;
  }
  give_back(std::move(l));
}

void Controller::write(uint32_t nsid, uint64_t slba, const uint8_t* p, size_t n) {
  IoTrace trace;
  const auto g = live()->ns(nsid);
  if (n == 0) throw Error(Errc::invalid_argument, "write: no data");
  const uint64_t nlb = (n + g.lba_size - 1) / g.lba_size;  // the last block zero padded
  auto l = lease(nsid);
  const size_t chunk = std::min(kBounce, l->qp->max_transfer() * l->qp->capacity());
  const uint64_t per = std::max<size_t>(chunk / g.lba_size, 1);
  for (uint64_t done = 0; done < nlb;) {
    const uint32_t k = uint32_t(std::min(per, nlb - done));
    const size_t off = size_t(done) * g.lba_size;
    const size_t bytes = std::min(size_t(k) * g.lba_size, n - off);
    std::memcpy(l->buf.data(), p + off, bytes);
    std::memset(l->buf.data() + bytes, 0, size_t(k) * g.lba_size - bytes);
    check(l->qp->write(nsid, slba + done, k, l->buf), "Write", slba + done, k);
    done += k;
  }
  give_back(std::move(l));
}

void register_controller(pyb::module_& m) {
  pyb::class_<Controller, std::shared_ptr<Controller>>(
      m, "Controller",
      "An NVMe controller opened by aisio.open(handle): Identify data, namespaces and raw block I/O. "
      "Reads and writes release the GIL; threads reading at once get queue pairs of their own.")
      .def(pyb::init([](const std::string& handle, uint32_t lba_size, unsigned emu_workers, const std::string& client) {
             target::OpenOptions o;
             o.image_lba_size = lba_size;
             o.emu_workers = emu_workers;
             o.client_name = client.empty() ? "python" : client;
             pyb::gil_scoped_release nogil;
             return std::make_shared<Controller>(handle, o);
           }),
           pyb::arg("handle"), pyb::arg("lba_size") = 512, pyb::arg("emu_workers") = 1, pyb::arg("client_name") = "")
      .def_property_readonly("handle", &Controller::handle, "The handle it was opened from.")
      .def_property_readonly("describe", [](const Controller& c) { return c.target() ? c.target()->describe() : "closed"; })
      .def("identify", &Controller::identify,
           "Identify Controller (and its namespaces) as a dict, as `aisio identify --json` prints it.")
      .def("namespaces", &Controller::namespaces, "Active namespaces: [{'nsid', 'lba_size', 'blocks', 'bytes'}].")
      .def("lba_size", [](const Controller& c, uint32_t nsid) { return c.target()->ns(nsid).lba_size; },
           pyb::arg("nsid") = 1)
      .def("_read_into", [](Controller& c, uint32_t nsid, uint64_t slba, uint32_t nlb, pyb::object out) {
             BufferRef b(out, true);
             if (b.gpu()) throw Error(Errc::not_supported, "raw block reads go to host memory; use File.pread for GPU buffers");
             pyb::gil_scoped_release nogil;
             c.read(nsid, slba, nlb, b.data(), b.size());
           })
      .def("_write_from", [](Controller& c, uint32_t nsid, uint64_t slba, pyb::object data) {
             BufferRef b(data, false);
             if (b.gpu()) throw Error(Errc::not_supported, "raw block writes come from host memory");
             pyb::gil_scoped_release nogil;
             c.write(nsid, slba, b.data(), b.size());
           })
      .def("close", [](Controller& c) {
             pyb::gil_scoped_release nogil;
             c.close();
           }, "Deletes the queue pairs and lets the controller go (when nothing else holds it).");
}

}  // namespace aisio::py
