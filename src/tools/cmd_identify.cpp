// aisio identify HANDLE [--json]
#include <fmt/format.h>

#include "tools/command.hpp"
#include "tools/identify_report.hpp"
#include "common/error.hpp"
#include "target/target.hpp"

namespace aisio::tools {
namespace {
CommandRegistrar reg(20, [](CLI::App& app) {
  struct Opts {
    std::string handle;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* c = app.add_subcommand("identify", "Identify a controller and its namespaces");
  c->add_option("handle", o->handle, target::kHandleHelp)->required();
  c->add_flag("--json", o->json, "JSON output");
  c->callback([o] {
    auto t = target::open(o->handle);  // keeps the controller the view points into
    IdentifyView v;
    if (auto* tc = t->tcp())
      v = identify_view(*tc);
    else if (auto ctrl = t->controller())
      v = identify_view(*ctrl);
    else  // homid keeps the admin queue to itself
      throw Error(Errc::not_supported, t->describe() + ": Identify needs the admin queue, which homid keeps; "
                                                       "`aisio homi status` shows its controllers");
    if (o->json)
      fmt::print("{}\n", identify_json(v).dump(2));
    else
      fmt::print("{}", identify_text(v));
  });
});
}  // namespace
}  // namespace aisio::tools
