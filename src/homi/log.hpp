// homid's log: one line per event on stderr, with a level. Under systemd (JOURNAL_STREAM
// set) each line starts with the syslog priority "<N>" so journald files it at the
// right level; on a terminal it starts with a timestamp and the level name.
#pragma once
#include <fmt/format.h>

#include <string>
#include <string_view>

namespace aisio::homi {

enum class Level { error = 0, warn = 1, info = 2, debug = 3 };

// "error", "warn"/"warning", "info", "debug"; throws Error(invalid_argument) otherwise.
Level parse_level(std::string_view s);
const char* level_name(Level l);
void set_log_level(Level l);
Level log_level();
void log_line(Level l, std::string_view text);

template <class... A>
void log(Level l, fmt::format_string<A...> f, A&&... a) {
  if (l <= log_level()) log_line(l, fmt::format(f, std::forward<A>(a)...));
}

}  // namespace aisio::homi
