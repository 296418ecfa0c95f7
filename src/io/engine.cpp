#include "io/engine.hpp"

#include "common/error.hpp"

namespace aisio::io {

PollMode parse_poll_mode(const std::string& s) {
  if (s == "spin") return PollMode::spin;
  if (s == "hybrid") return PollMode::hybrid;
  throw Error(Errc::invalid_argument, "--poll '" + s + "': use spin or hybrid");
}

}  // namespace aisio::io
