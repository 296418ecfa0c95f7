// aisio: the command-line front end of every layer (emu, identify, read/write, perf, ...).
#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "common/error.hpp"
#include "tools/command.hpp"

namespace aisio::tools {
namespace {
std::vector<std::pair<int, std::function<void(CLI::App&)>>>& registry() {
  static std::vector<std::pair<int, std::function<void(CLI::App&)>>> r;
  return r;
}
}  // namespace
CommandRegistrar::CommandRegistrar(int order, std::function<void(CLI::App&)> add) {
  registry().emplace_back(order, std::move(add));
}
}  // namespace aisio::tools

int main(int argc, char** argv) {
  CLI::App app{"aisio: accelerator-integrated storage I/O (user-space NVMe, HOMI)"};
  app.require_subcommand(1);
  auto& reg = aisio::tools::registry();
  std::stable_sort(reg.begin(), reg.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (auto& [order, add] : reg) add(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    fmt::print(stderr, "aisio: {}\n", e.what());
    return 1;
  }
  return 0;
}
