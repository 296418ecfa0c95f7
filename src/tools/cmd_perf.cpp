// aisio perf run [TARGET...] [options]: the block I/O benchmark (fio-like options) over
// our driver (--engine unvme) or the kernel (--engine io_uring, psync). See src/perf/.
//
//   aisio perf run embedded:1G --bs 4k --qd 32 --runtime 5
//   aisio perf run --emu-devices 16 --emu-iops 3.86M --emu-bw 14.5G --bs 512 --qd 128 --threads 2
//   aisio perf run emu:a emu:b --rw randrw --rwmix 70 --json
//   aisio perf run /dev/nvme0n1 --engine io_uring --hipri --bs 4k --qd 32
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include "common/error.hpp"
#include "common/uring_probe.hpp"
#include "perf/report.hpp"
#include "perf/runner.hpp"
#include "report/output.hpp"
#include "report/table.hpp"
#include "tools/backends.hpp"
#include "tools/command.hpp"

namespace aisio::tools {
namespace {

void run_perf(perf::PerfOptions o) {
  perf::RunHooks hooks;
  hooks.backends = &tool_backends();
  const bool live = o.progress && isatty(STDOUT_FILENO) && !o.json && !o.terse;
  size_t last_len = 0;
  if (live) {
    hooks.progress = [&last_len](const perf::ProgressInfo& p) {
      std::string line = fmt::format("[{}] {:.0f}s{}  {} IOPS  {:.1f} MiB/s  {} I/Os", p.ramp ? "ramp" : "run ",
                                     p.elapsed_s, p.total_s > 0 ? fmt::format("/{:.0f}s", p.total_s) : "",
                                     report::human_count(p.iops), p.bytes_per_s / (1024.0 * 1024.0),
                                     report::human_count(double(p.ios)));
      std::string pad(last_len > line.size() ? last_len - line.size() : 0, ' ');
      fmt::print("\r{}{}", line, pad);
      std::fflush(stdout);
      last_len = line.size();
    };
  }
  perf::RunResult r = perf::run(o, hooks);
  if (live && last_len) fmt::print("\r{}\r", std::string(last_len, ' '));
  if (!report::emit_json(perf::to_json(r), o)) fmt::print("{}", o.terse ? perf::to_terse(r) : perf::to_text(r));
  std::fflush(stdout);
  if (r.errors()) {
    const auto t = r.total();
    throw Error(Errc::io, fmt::format("{} I/O error{}; first: {}", t.errors, t.errors > 1 ? "s" : "", t.first_error));
  }
}

CommandRegistrar reg(40, [](CLI::App& app) {
  auto* perf_cmd = app.add_subcommand("perf", "Block I/O benchmark: our driver (unvme) or the kernel (io_uring, psync)");
  perf_cmd->require_subcommand(1);

  auto o = std::make_shared<perf::PerfOptions>();
  auto* run = perf_cmd->add_subcommand("run", "Run a benchmark (fio-like options); reports IOPS, MiB/s, latency, CPU");
  perf::add_run_options(*run, *o);
  run->callback([o] { run_perf(*o); });

  auto* engines = perf_cmd->add_subcommand("engines", "Show which engines work on this machine");
  engines->callback([] {
    std::string why;
    fmt::print("unvme     yes (targets: emu:NAME, embedded[:SIZE], PCI address; or --emu-devices N)\n");
    bool ok = uring_available(&why);
    fmt::print("io_uring  {}\n", ok ? "yes (--hipri for IOPOLL, --sqpoll)" : "no: " + why);
    fmt::print("psync     yes\n");
  });
});

}  // namespace
}  // namespace aisio::tools
