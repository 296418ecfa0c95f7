// aisio._aisio: the C++ side of the Python package (python/aisio/__init__.py is the
// front users import). Every call that does I/O releases the GIL.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "buffers.hpp"
#include "controller.hpp"
#include "errors.hpp"
#include "file.hpp"
#include "gpu_copy.hpp"
#include "trace.hpp"

namespace pyb = pybind11;

PYBIND11_MODULE(_aisio, m) {
  m.doc() = "aisio's C++ core (controllers, the file read engine, DLPack arrays); import aisio instead.";
  aisio::py::register_errors(m);
  aisio::py::register_buffers(m);
  aisio::py::register_controller(m);
  aisio::py::register_files(m);
  aisio::py::register_batch(m);
  aisio::py::register_dataset(m);
  m.attr("cuda") = aisio::py::gpu::built();
  m.def("_io_trace", [](bool on) {
    aisio::py::io_trace_enable(on);
    pyb::list l;
    for (const auto& i : aisio::py::io_trace_take()) l.append(pyb::make_tuple(i.thread, i.start, i.end));
    return l;
  }, "Tests: switch recording of GIL-free I/O intervals; returns (and clears) those recorded: "
     "[(thread, start, end)] on time.monotonic()'s clock.");
}
