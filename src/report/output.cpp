#include "report/output.hpp"

#include <fmt/format.h>

#include <fstream>

#include "common/error.hpp"

namespace aisio::report {

void add_output_options(CLI::App& app, Output& o) {
  app.add_flag("--json", o.json, "Print the JSON report instead of the text");
  app.add_option("--output,-o,--json-file", o.json_file, "Also write the JSON report to FILE");
}

void add_threads_option(CLI::App& app, uint32_t& threads, const char* help) {
  app.add_option("--threads,--numjobs,-t", threads, help)->capture_default_str();
}

void add_qd_option(CLI::App& app, uint32_t& qd, const char* help) {
  app.add_option("--qd,--iodepth,-q", qd, help)->capture_default_str();
}

bool emit(const std::string& json_text, const Output& o) {
  if (!o.json_file.empty()) {
    std::ofstream f(o.json_file);
    f << json_text << "\n";
    if (!f) throw Error(Errc::system, "cannot write " + o.json_file);
  }
  if (o.json) fmt::print("{}\n", json_text);
  return o.json;
}

}  // namespace aisio::report
