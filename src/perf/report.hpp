// Reports of a run: a text table and fio-style JSON (jobs[].read.iops, .bw (KiB/s),
// .bw_bytes, .lat_ns{min,max,mean,stddev,N,percentile{"99.000000": ns}}, usr_cpu,
// sys_cpu, ...), plus the machine, the commit and the command line.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "perf/options.hpp"
#include "perf/result.hpp"

namespace aisio::perf {

// Percentiles reported everywhere (JSON has all of them, the table p50/p99/p99.9).
inline constexpr double kPercentiles[] = {1, 5, 10, 20, 50, 80, 90, 95, 99, 99.5, 99.9, 99.99};

nlohmann::json to_json(const RunResult& r);
std::string to_text(const RunResult& r);
// One line: "aisio-perf engine=unvme rw=randread bs=4096 qd=32 threads=1 devices=1 iops=...
// bw_mib=... lat_mean_ns=... lat_p50_ns=... lat_p99_ns=... lat_p999_ns=... usr_cpu=... sys_cpu=... errors=0".
std::string to_terse(const RunResult& r);

}  // namespace aisio::perf
