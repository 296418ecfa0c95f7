// aisio::Error as a Python exception, aisio.Error (a RuntimeError) with attributes:
//   category     the aisio category in words ("NVMe status", "invalid argument", ...)
//   status       for NVMe errors: the status name ("LBA Out of Range"), else None
//   status_code  for NVMe errors: the 15-bit CQE status field, else None
#pragma once
#include <pybind11/pybind11.h>

#include <string>

#include "common/error.hpp"

namespace aisio::py {

void register_errors(pybind11::module_& m);

// Raises (as a C++ exception pybind11 translates) an aisio.Error that a file read
// reported in words through the sink (the engines report per-file errors as text).
[[noreturn]] void throw_file_error(const std::string& what);

}  // namespace aisio::py
