// The context a benchmark report records: the machine, the build's commit and the
// exact command line.
#pragma once
#include <string>
#include <vector>

#include "perf/result.hpp"

namespace aisio::perf {

MachineInfo machine_info();
// `git describe --always --dirty --tags` of the source tree when this library was
// built (regenerated on every build), "unknown" when git was not available.
std::string build_commit();
// argv of this process from /proc/self/cmdline, shell-quoted where needed.
std::string own_command_line();
std::string shell_quote(const std::string& arg);
std::string join_command(const std::vector<std::string>& argv);

}  // namespace aisio::perf
