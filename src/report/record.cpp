#include "report/record.hpp"

#include <fmt/format.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <thread>

namespace aisio::report {

extern const char* const kBuildCommit;  // generated: git_describe.cpp

Machine machine_info() {
  Machine m;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) m.hostname = host;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0 || line.rfind("Model", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        m.cpu_model = line.substr(colon + 1);
        while (!m.cpu_model.empty() && m.cpu_model.front() == ' ') m.cpu_model.erase(0, 1);
        break;
      }
    }
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  m.cores = n > 0 ? unsigned(n) : std::thread::hardware_concurrency();
  utsname u{};
  if (uname(&u) == 0) m.kernel = std::string(u.sysname) + " " + u.release;
  return m;
}

Record Record::capture(std::string command) {
  Record r;
  r.command = command.empty() ? own_command_line() : std::move(command);
  r.commit = build_commit();
  r.machine = machine_info();
  r.stamp();
  return r;
}

void Record::stamp() {
  auto now = std::chrono::system_clock::now();
  timestamp = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", &tm);
  started = buf;
}

std::string build_commit() { return kBuildCommit; }

std::string shell_quote(const std::string& a) {
  if (a.empty()) return "''";
  const bool plain = std::ranges::all_of(a, [](char c) {
    return isalnum(static_cast<unsigned char>(c)) || std::string_view("-_./:=,+@%").find(c) != std::string_view::npos;
  });
  if (plain) return a;
  std::string out = "'";
  for (char c : a) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

std::string join_command(const std::vector<std::string>& argv) {
  std::string out;
  for (auto& a : argv) {
    if (!out.empty()) out += ' ';
    out += shell_quote(a);
  }
  return out;
}

std::string own_command_line() {
  // NUL-terminated arguments.
  std::ifstream f("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> argv;
  for (std::string a; std::getline(f, a, '\0');) argv.push_back(a);
  return join_command(argv);
}

std::string machine_line(const Machine& m) {
  return fmt::format("{}, {}, {} CPUs, {}", m.hostname, m.cpu_model, m.cores, m.kernel);
}

}  // namespace aisio::report
