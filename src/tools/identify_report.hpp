// Identify data of a controller and its namespaces as a readable table (in the manner
// of nvme-cli id-ctrl / id-ns) and as JSON.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "nvme/controller.hpp"

namespace aisio::tools {

nlohmann::ordered_json identify_json(const nvme::Controller& c);
std::string identify_text(const nvme::Controller& c);

}  // namespace aisio::tools
