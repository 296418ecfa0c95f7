#include "common/uring_probe.hpp"

#include <fmt/format.h>

#include <cstring>

#if AISIO_HAVE_URING
#include <liburing.h>
#endif

namespace aisio {

bool uring_built() { return AISIO_HAVE_URING != 0; }

bool uring_available(std::string* why) {
#if AISIO_HAVE_URING
  io_uring ring;
  int r = io_uring_queue_init(4, &ring, 0);
  if (r < 0) {
    if (why) *why = fmt::format("io_uring_queue_init: {}", std::strerror(-r));
    return false;
  }
  io_uring_queue_exit(&ring);
  return true;
#else
  if (why) *why = "not built: liburing was not found at configure time (apt-get install liburing-dev)";
  return false;
#endif
}

}  // namespace aisio
