#include "homi/log.hpp"

#include <fmt/chrono.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <mutex>

#include "common/error.hpp"

namespace aisio::homi {

namespace {
std::atomic<int> g_level{int(Level::info)};
std::mutex g_mu;
}  // namespace

Level parse_level(std::string_view s) {
  if (s == "warning") return Level::warn;
  for (int l = int(Level::error); l <= int(Level::debug); ++l)
    if (s == level_name(Level(l))) return Level(l);
  throw Error(Errc::invalid_argument, "log level '" + std::string(s) + "': use error, warn, info or debug");
}

const char* level_name(Level l) {
  static const char* const names[] = {"error", "warn", "info", "debug"};  // by Level
  return unsigned(l) < std::size(names) ? names[int(l)] : "?";
}

void set_log_level(Level l) { g_level.store(int(l)); }
Level log_level() { return Level(g_level.load()); }

void log_line(Level l, std::string_view text) {
  static const bool journald = std::getenv("JOURNAL_STREAM") != nullptr;
  std::string line;
  if (journald) {
    static const int prio[] = {3, 4, 6, 7};  // LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG
    line = fmt::format("<{}>{}\n", prio[int(l)], text);
  } else {
    auto now = std::chrono::system_clock::now();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    line = fmt::format("{:%H:%M:%S}.{:03} homid[{}] {}: {}\n", fmt::localtime(std::chrono::system_clock::to_time_t(now)),
                       ms, getpid(), level_name(l), text);
  }
  std::lock_guard lk(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace aisio::homi
