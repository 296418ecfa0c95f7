// Identify data of a controller and its namespaces as a readable table (in the manner
// of nvme-cli id-ctrl / id-ns) and as JSON.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "nvme/controller.hpp"
#include "tcp/controller.hpp"

namespace aisio::tools {

// What the report shows, from a PCIe (or software) controller or an NVMe/TCP one.
struct IdentifyView {
  std::string handle;
  nvme::Cap cap;
  nvme::Version version;
  const nvme::IdentifyController* id = nullptr;
  size_t mdts_bytes = 0;
  uint32_t io_queue_pairs = 0;
  const std::vector<nvme::Namespace>* namespaces = nullptr;
  std::string transport = "pcie";
};
IdentifyView identify_view(const nvme::Controller& c);
IdentifyView identify_view(const tcp::Controller& c);

nlohmann::ordered_json identify_json(const IdentifyView& v);
std::string identify_text(const IdentifyView& v);
inline nlohmann::ordered_json identify_json(const nvme::Controller& c) { return identify_json(identify_view(c)); }

}  // namespace aisio::tools
