// The version libaisio.so was built as: a program compares it with the headers' kVersion
// it was compiled against (aisio/version.hpp, written by cmake/stage-headers.cmake).
#include "aisio/version.hpp"

namespace aisio {

const char* library_version() noexcept { return AISIO_VERSION_STRING; }

}  // namespace aisio
