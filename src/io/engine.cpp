#include "io/engine.hpp"

#include "common/error.hpp"

namespace aisio::io {

PollMode parse_poll_mode(const std::string& s) {
  if (s == "spin") return PollMode::spin;
  if (s == "hybrid") return PollMode::hybrid;
  throw Error(Errc::invalid_argument, "--poll '" + s + "': use spin or hybrid");
}

const char* poll_mode_name(PollMode m) { return m == PollMode::hybrid ? "hybrid" : "spin"; }

}  // namespace aisio::io
