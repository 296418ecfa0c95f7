#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.hpp"
#include "report/output.hpp"
#include "report/record.hpp"
#include "report/table.hpp"

using namespace aisio;

// The table writes what the fixed fmt format strings of the perf and fil tables wrote.
TEST(Table, MatchesFixedWidthFormat) {
  report::Table t({{"path", 18, true}, {"files", 6}, {"GB/s", 7}, {"verified", 14, true, 2}, {"cache", 0, true}});
  EXPECT_EQ(t.header(), fmt::format("{:<18} {:>6} {:>7}  {:<14} {}\n", "path", "files", "GB/s", "verified", "cache"));
  EXPECT_EQ(t.row({"unvme (xfs)", "300", "5.170", "300/300 ok", "dropped"}),
            fmt::format("{:<18} {:>6} {:>7}  {:<14} {}\n", "unvme (xfs)", "300", "5.170", "300/300 ok", "dropped"));
  // A short row (a skipped path): the last cell as it is.
  EXPECT_EQ(t.row({"posix", "skipped: no"}), fmt::format("{:<18} {}\n", "posix", "skipped: no"));
  // Wider cells are not cut.
  EXPECT_EQ(t.row({std::string(20, 'x'), "1234567", "1", "a", "b"}),
            fmt::format("{:<18} {:>6} {:>7}  {:<14} {}\n", std::string(20, 'x'), "1234567", "1", "a", "b"));
}

TEST(Table, HumanNumbers) {
  EXPECT_EQ(report::human_count(16.5e6), "16.50M");
  EXPECT_EQ(report::human_count(12345), "12.3k");
  EXPECT_EQ(report::human_count(789), "789");
  EXPECT_EQ(report::human_ns(0), "-");
  EXPECT_EQ(report::human_ns(61), "61ns");
  EXPECT_EQ(report::human_ns(12300), "12.3us");
  EXPECT_EQ(report::human_ns(4.56e6), "4.56ms");
}

TEST(Record, Capture) {
  auto r = report::Record::capture("given command");
  EXPECT_EQ(r.command, "given command");
  EXPECT_FALSE(r.commit.empty());
  EXPECT_GT(r.timestamp, 1700000000);
  EXPECT_EQ(r.started.size(), 24u) << r.started;  // 2026-12-07T01:34:09+0000
  EXPECT_FALSE(r.machine.kernel.empty());
  EXPECT_GT(r.machine.cores, 0u);
  EXPECT_NE(report::Record::capture().command.find("report_test"), std::string::npos);
  auto j = report::machine_json(r.machine);
  EXPECT_EQ(j["cores"], r.machine.cores);
  EXPECT_EQ(report::machine_line(r.machine).find(r.machine.hostname), 0u);
}

TEST(Record, ShellQuote) {
  EXPECT_EQ(report::shell_quote("plain-arg_1.2:x=y"), "plain-arg_1.2:x=y");
  EXPECT_EQ(report::shell_quote(""), "''");
  EXPECT_EQ(report::shell_quote("it's here"), "'it'\\''s here'");
  EXPECT_EQ(report::join_command({"aisio", "fil run", "a"}), "aisio 'fil run' a");
}

TEST(Output, WritesFileAndRefusesUnwritable) {
  auto path = std::filesystem::temp_directory_path() / fmt::format("report_test_{}.json", ::getpid());
  nlohmann::json j = {{"a", 1}};
  report::Output o;
  o.json_file = path.string();
  EXPECT_FALSE(report::emit_json(j, o));  // not printed: the caller prints its text
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str(), j.dump(2) + "\n");
  std::filesystem::remove(path);
  o.json_file = "/nonexistent-dir/x.json";
  try {
    report::emit_json(j, o);
    FAIL() << "wrote to " << o.json_file;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::system);
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x.json"), std::string::npos);
  }
}

TEST(Output, SharedOptions) {
  CLI::App app;
  report::Output o;
  uint32_t threads = 1, qd = 32;
  report::add_output_options(app, o);
  report::add_threads_option(app, threads, "t");
  report::add_qd_option(app, qd, "q");
  app.parse("--json --output out.json -t 4 --iodepth 8", false);
  EXPECT_TRUE(o.json);
  EXPECT_EQ(o.json_file, "out.json");
  EXPECT_EQ(threads, 4u);
  EXPECT_EQ(qd, 8u);
}
