// Sub-commands of the `aisio` tool register themselves: each cmd_*.cpp defines one
// static CommandRegistrar, and main() adds them to the CLI11 app in `order`.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace aisio::tools {

struct CommandRegistrar {
  CommandRegistrar(int order, std::function<void(CLI::App&)> add);
};

}  // namespace aisio::tools
