// The context a benchmark report records, now in src/report (report/record.hpp); these
// names stay for the callers that use them under perf::.
#pragma once
#include "report/record.hpp"

namespace aisio::perf {

using report::build_commit;
using report::join_command;
using report::machine_info;
using report::own_command_line;
using report::shell_quote;

}  // namespace aisio::perf
