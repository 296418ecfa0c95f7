#include "fil/report.hpp"

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <map>

#include "perf/machine.hpp"

namespace aisio::fil {

std::string dataset_summary(const Manifest& m) {
  std::map<std::string, uint64_t> kinds;
  uint64_t largest = 0;
  for (const auto& f : m.files) {
    kinds[f.kind]++;
    largest = std::max(largest, f.size);
  }
  std::string k;
  for (auto& [name, n] : kinds) k += fmt::format("{}{} {}", k.empty() ? "" : ", ", n, name);
  return fmt::format("{} files, {:.1f} MiB (largest {:.1f} MiB): {}", m.files.size(),
                     double(m.total_bytes()) / (1 << 20), double(largest) / (1 << 20), k);
}

std::string machine_line() {
  auto mi = perf::machine_info();
  return fmt::format("{}, {}, {} CPUs, {}", mi.hostname, mi.cpu_model, mi.cores, mi.kernel);
}
std::string commit_string() { return perf::build_commit(); }
std::string command_line() { return perf::own_command_line(); }

nlohmann::ordered_json run_json(const RunRecord& r) {
  nlohmann::ordered_json j;
  auto mi = perf::machine_info();
  j["tool"] = "aisio fil run";
  j["command"] = command_line();
  j["commit"] = commit_string();
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", std::localtime(&now));
  j["started"] = buf;
  j["machine"] = {{"hostname", mi.hostname}, {"cpu", mi.cpu_model}, {"cpus", mi.cores}, {"kernel", mi.kernel}};
  j["dir"] = r.dir;
  j["manifest"] = r.manifest_from;
  if (r.manifest) {
    std::map<std::string, uint64_t> kinds;
    for (const auto& f : r.manifest->files) kinds[f.kind]++;
    j["dataset"] = {{"files", r.manifest->files.size()},
                    {"bytes", r.manifest->total_bytes()},
                    {"seed", r.manifest->seed},
                    {"kinds", kinds}};
  }
  j["options"] = {{"threads", r.options.threads},
                  {"qd", r.options.engine.qd},
                  {"io_size", r.options.engine.io_size},
                  {"batch", r.options.batch},
                  {"verify", r.options.verify},
                  {"dest", "host"}};
  if (!r.unvme_target.empty()) j["unvme"] = {{"target", r.unvme_target}, {"extents", r.extents}};
  auto res = nlohmann::ordered_json::array();
  for (const auto& p : r.results) res.push_back(result_json(p));
  j["results"] = std::move(res);
  j["notes"] = r.notes;
  bool ok = true;
  for (const auto& p : r.results)
    if (p.ran && !p.passed()) ok = false;
  j["passed"] = ok;
  return j;
}

}  // namespace aisio::fil
