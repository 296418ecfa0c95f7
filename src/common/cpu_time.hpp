// CPU seconds (user + system) of the calling thread (who = RUSAGE_THREAD) or of the
// process (RUSAGE_SELF): what the benchmarks divide by their bytes or I/Os.
#pragma once
#include <sys/resource.h>

namespace aisio {

inline double cpu_seconds(int who) {
  rusage ru{};
  getrusage(who, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

}  // namespace aisio
