// The record every report starts with: the machine, the build's commit, the exact
// command line and when it ran. `aisio perf` and `aisio fil` (and the GPU runs) capture
// it the same way and write its machine the same way.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace aisio::report {

struct Machine {
  std::string hostname;
  std::string cpu_model;
  unsigned cores = 0;  // online CPUs
  std::string kernel;  // uname -sr
};

struct Record {
  std::string command;    // shell-quoted argv
  std::string commit;     // build_commit()
  std::string started;    // ISO 8601, local time
  int64_t timestamp = 0;  // seconds since the epoch
  Machine machine;
  // Now, on this machine; `command` "" records this process's own command line.
  static Record capture(std::string command = "");
  void stamp();  // started and timestamp: now
};

Machine machine_info();
// `git describe --always --dirty --tags` of the source tree when this library was
// built (regenerated on every build), "unknown" when git was not available.
std::string build_commit();
// argv of this process from /proc/self/cmdline, shell-quoted where needed.
std::string own_command_line();
std::string shell_quote(const std::string& arg);
std::string join_command(const std::vector<std::string>& argv);

// {"hostname", "cpu_model", "cores", "kernel"}, in either JSON type.
template <class Json = nlohmann::ordered_json>
Json machine_json(const Machine& m) {
  return Json{{"hostname", m.hostname}, {"cpu_model", m.cpu_model}, {"cores", m.cores}, {"kernel", m.kernel}};
}
// "host, cpu, N CPUs, kernel": the machine line of text reports.
std::string machine_line(const Machine& m);

}  // namespace aisio::report
