// The context a benchmark report records, now in src/report (report/record.hpp); the
// name stays for the callers that use it under perf::.
#pragma once
#include "report/record.hpp"

namespace aisio::perf {

using report::build_commit;

}  // namespace aisio::perf
