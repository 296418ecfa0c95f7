#include "common/error.hpp"

#include <cerrno>
#include <cstring>
#include <iterator>

namespace aisio {

const char* errc_name(Errc e) {
  // In the order of Errc.
  static constexpr const char* names[] = {"invalid argument",     "NVMe status",   "timeout",        "controller fatal",
                                          "controller not ready", "out of memory", "system error",   "protocol error",
                                          "not supported",        "I/O error"};
  static_assert(std::size(names) == size_t(Errc::io) + 1);
  return size_t(e) < std::size(names) ? names[size_t(e)] : "error";
}

void throw_errno(const std::string& what, int err) {
  throw Error(Errc::system, what + ": " + std::strerror(err));
}
void throw_errno(const std::string& what) { throw_errno(what, errno); }

}  // namespace aisio
