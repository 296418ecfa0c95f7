#include "fil/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "report/record.hpp"

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

nlohmann::ordered_json run_json(const RunRecord& r) {
  nlohmann::ordered_json j;
  const auto rec = report::Record::capture();
  j["tool"] = "aisio fil run";
  j["command"] = rec.command;
  j["commit"] = rec.commit;
  j["started"] = rec.started;
  j["machine"] = report::machine_json(rec.machine);
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
  j["passed"] = std::ranges::none_of(r.results, [](const PathResult& p) { return p.ran && !p.passed(); });
  return j;
}

}  // namespace aisio::fil
