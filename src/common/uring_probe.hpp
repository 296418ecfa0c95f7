// Whether io_uring can be used here: built with liburing, and a ring can be set up
// (kernels or seccomp profiles may refuse it). Shared by aisio perf and aisio fil.
#pragma once
#include <string>

namespace aisio {

bool uring_built();                                  // liburing found at configure time
bool uring_available(std::string* why = nullptr);   // io_uring_queue_init works here

}  // namespace aisio
