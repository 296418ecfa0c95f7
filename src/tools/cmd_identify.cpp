// aisio identify HANDLE [--json]
#include <fmt/format.h>

#include "tools/command.hpp"
#include "tools/identify_report.hpp"
#include "tools/target.hpp"

namespace aisio::tools {
namespace {
CommandRegistrar reg(20, [](CLI::App& app) {
  struct Opts {
    std::string handle;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* c = app.add_subcommand("identify", "Identify a controller and its namespaces");
  c->add_option("handle", o->handle, "emu:NAME, embedded[:SIZE] or a PCI address")->required();
  c->add_flag("--json", o->json, "JSON output");
  c->callback([o] {
    Target t = open_target(o->handle);
    if (o->json)
      fmt::print("{}\n", identify_json(*t.ctrl).dump(2));
    else
      fmt::print("{}", identify_text(*t.ctrl));
  });
});
}  // namespace
}  // namespace aisio::tools
