#include "common/error.hpp"

#include <cerrno>
#include <cstring>

namespace aisio {

const char* errc_name(Errc e) {
  switch (e) {
    case Errc::invalid_argument: return "invalid argument";
    case Errc::nvme_status: return "NVMe status";
    case Errc::timeout: return "timeout";
    case Errc::controller_fatal: return "controller fatal";
    case Errc::not_ready: return "controller not ready";
    case Errc::no_memory: return "out of memory";
    case Errc::system: return "system error";
    case Errc::protocol: return "protocol error";
    case Errc::not_supported: return "not supported";
    case Errc::io: return "I/O error";
  }
  return "error";
}

void throw_errno(const std::string& what, int err) {
  throw Error(Errc::system, what + ": " + std::strerror(err));
}
void throw_errno(const std::string& what) { throw_errno(what, errno); }

}  // namespace aisio
