#include "errors.hpp"

#include "spec/status.hpp"

namespace aisio::py {

namespace pyb = pybind11;

namespace {
PyObject* g_error = nullptr;  // aisio.Error, alive as long as the module

void raise(const Error& e) {
  pyb::object type = pyb::reinterpret_borrow<pyb::object>(g_error);
  pyb::object exc = type(pyb::str(e.what()));
  exc.attr("category") = pyb::str(errc_name(e.code()));
  if (e.code() == Errc::nvme_status) {
    const nvme::Status st = e.status();
    exc.attr("status") = pyb::str(nvme::status_code_name(st.sct(), st.sc()));
    exc.attr("status_code") = pyb::int_(st.field);
  } else {
    exc.attr("status") = pyb::none();
    exc.attr("status_code") = pyb::none();
  }
  PyErr_SetObject(g_error, exc.ptr());
}
}  // namespace

void register_errors(pyb::module_& m) {
  pyb::dict attrs;
  attrs["__doc__"] = pyb::str(
      "An aisio failure. Attributes: category (the aisio category in words: 'NVMe status', 'invalid argument', "
      "'I/O error', 'not supported', ...), status (for NVMe errors the status name, e.g. 'LBA Out of Range'; "
      "else None) and status_code (the CQE status field, or None).");
  attrs["category"] = pyb::str("error");
  attrs["status"] = pyb::none();
  attrs["status_code"] = pyb::none();
  g_error = PyErr_NewException("aisio.Error", PyExc_RuntimeError, attrs.ptr());
  if (!g_error) throw pyb::error_already_set();
  m.add_object("Error", pyb::reinterpret_borrow<pyb::object>(g_error));
  pyb::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      raise(e);
    }
  });
}

void throw_file_error(const std::string& what) { throw Error(Errc::io, what); }

}  // namespace aisio::py
