#include "backends/gpus.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <numeric>
#include <ranges>

#include "common/error.hpp"

namespace aisio::backends {

std::vector<int> parse_gpu_list(const std::string& s, int fallback) {
  if (s.empty()) return {fallback};
  std::vector<int> out;
  for (auto part : std::views::split(s, ',')) {
    const std::string item(part.begin(), part.end());
    bool digits = !item.empty() && item.size() <= 4 &&
                  std::all_of(item.begin(), item.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits)
      throw Error(Errc::invalid_argument,
                  fmt::format("--gpus '{}': '{}' is not a CUDA device ordinal (a list like 0,1)", s, item));
    out.push_back(std::stoi(item));
  }
  return out;
}

std::string format_gpu_list(const std::vector<int>& gpus) { return fmt::format("{}", fmt::join(gpus, ",")); }

std::vector<std::vector<uint32_t>> spread_files(const std::vector<uint64_t>& sizes, size_t slots) {
  if (slots == 0) throw Error(Errc::invalid_argument, "spread_files: no GPU slot");
  std::vector<uint32_t> order(sizes.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return sizes[a] > sizes[b]; });
  std::vector<uint64_t> load(slots, 0);
  std::vector<std::vector<uint32_t>> out(slots);
  for (uint32_t i : order) {
    size_t s = size_t(std::min_element(load.begin(), load.end()) - load.begin());
    load[s] += sizes[i];
    out[s].push_back(i);
  }
  for (auto& l : out) std::sort(l.begin(), l.end());
  return out;
}

QueuePlan plan_queues(size_t slots, size_t devices, uint32_t queues) {
  QueuePlan p;
  p.per_slot = uint32_t(devices) * queues;
  for (uint32_t s = 0; s < slots; ++s) {
    p.first.push_back(uint32_t(p.queues.size()));
    for (uint32_t d = 0; d < devices; ++d)
      for (uint32_t q = 0; q < queues; ++q) p.queues.push_back({s, d, q});
  }
  return p;
}

std::map<int, uint64_t> blocks_per_gpu(const std::vector<int>& gpus, uint64_t blocks_per_slot) {
  std::map<int, uint64_t> m;
  for (int g : gpus) m[g] += blocks_per_slot;
  return m;
}

}  // namespace aisio::backends
