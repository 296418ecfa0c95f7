// The record of a `fil run`: machine, build commit, exact command, data set, options
// and each path's result, as JSON (and the text the command prints).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fil/run.hpp"

namespace aisio::fil {

struct RunRecord {
  std::string dir;
  std::string manifest_from;
  std::string unvme_target;     // "" when unvme did not run
  std::string extents;          // the unvme extent source, described
  const Manifest* manifest = nullptr;
  RunOptions options;
  std::vector<PathResult> results;
  std::vector<std::string> notes;
};

nlohmann::ordered_json run_json(const RunRecord& r);
// Summary of a data set: files, bytes, kinds.
std::string dataset_summary(const Manifest& m);

}  // namespace aisio::fil
