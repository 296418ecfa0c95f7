// Where a report goes, and the options every reporting command shares, declared once:
// --json (print the JSON report instead of the text), --output/-o (also write it to a
// file), --threads and --qd.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace aisio::report {

struct Output {
  bool json = false;      // print the JSON report instead of the text
  std::string json_file;  // also write the JSON report here ("" no)
};

// --json and --output,-o (also --json-file).
void add_output_options(CLI::App& app, Output& o);
// --threads,--numjobs,-t and --qd,--iodepth,-q, with what each counts for this command.
void add_threads_option(CLI::App& app, uint32_t& threads, const char* help);
void add_qd_option(CLI::App& app, uint32_t& qd, const char* help);

// Writes the JSON report to o.json_file when given (Errc::system when it cannot) and
// prints it with --json. Returns whether it was printed (the text report is not then).
bool emit(const std::string& json_text, const Output& o);
template <class Json>
bool emit_json(const Json& j, const Output& o) {
  return emit(j.dump(2), o);
}

}  // namespace aisio::report
