#include "perf/options.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cmath>

#include "backends/registry.hpp"
#include "common/error.hpp"
#include "common/units.hpp"
#include "report/output.hpp"

namespace aisio::perf {

namespace {
[[noreturn]] void bad(const std::string& msg) { throw Error(Errc::invalid_argument, msg); }

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Splits "12.5k" into 12.5 and "k".
std::pair<double, std::string> number_and_unit(const std::string& text, const char* what) {
  std::string s = lower(text);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (...) {
    bad(fmt::format("{} '{}' is not a number", what, text));
  }
  if (!std::isfinite(v) || v < 0) bad(fmt::format("{} '{}' must be a non-negative number", what, text));
  std::string unit = s.substr(used);
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  return {v, unit};
}

// An option whose text parse() turns into the field's value (a size, a duration, a name).
template <class T, class Parse>
void add_parsed(CLI::App& app, const std::string& names, T& field, Parse parse, const std::string& help) {
  app.add_option_function<std::string>(names, [&field, parse](const std::string& s) { field = T(parse(s)); }, help);
}
}  // namespace

const char* engine_name(Engine e) {
  switch (e) {
    case Engine::unvme: return "unvme";
    case Engine::io_uring: return "io_uring";
    case Engine::psync: return "psync";
  }
  return "?";
}
const char* rw_name(RwMode m) {
  switch (m) {
    case RwMode::randread: return "randread";
    case RwMode::read: return "read";
    case RwMode::randwrite: return "randwrite";
    case RwMode::write: return "write";
    case RwMode::randrw: return "randrw";
    case RwMode::rw: return "rw";
  }
  return "?";
}
const char* mem_name(MemKind m) { return m == MemKind::host ? "host" : "gpu"; }

Engine parse_engine(const std::string& s) {
  std::string l = lower(s);
  if (l == "unvme" || l == "aisio") return Engine::unvme;
  if (l == "io_uring" || l == "iouring" || l == "uring") return Engine::io_uring;
  if (l == "psync" || l == "sync") return Engine::psync;
  bad("unknown engine '" + s + "' (have: unvme, io_uring, psync)");
}
RwMode parse_rw(const std::string& s) {
  std::string l = lower(s);
  if (l == "randread") return RwMode::randread;
  if (l == "read") return RwMode::read;
  if (l == "randwrite") return RwMode::randwrite;
  if (l == "write") return RwMode::write;
  if (l == "randrw") return RwMode::randrw;
  if (l == "rw" || l == "readwrite") return RwMode::rw;
  bad("unknown --rw '" + s + "' (have: randread, read, randwrite, write, randrw, rw)");
}
MemKind parse_mem(const std::string& s) {
  std::string l = lower(s);
  if (l == "host") return MemKind::host;
  if (l == "gpu") return MemKind::gpu;
  bad("unknown --mem '" + s + "' (have: host, gpu)");
}

uint32_t read_percent(RwMode m, uint32_t rwmix) {
  switch (m) {
    case RwMode::randread:
    case RwMode::read: return 100;
    case RwMode::randwrite:
    case RwMode::write: return 0;
    default: return rwmix;
  }
}

double parse_duration(const std::string& text) {
  auto [v, unit] = number_and_unit(text, "duration");
  if (unit.empty() || unit == "s" || unit == "sec") return v;
  if (unit == "ms") return v / 1e3;
  if (unit == "us") return v / 1e6;
  if (unit == "m" || unit == "min") return v * 60;
  if (unit == "h") return v * 3600;
  bad(fmt::format("duration '{}': unknown unit (use s, ms, m)", text));
}

std::vector<int> parse_cpu_list(const std::string& s) {
  std::vector<int> out;
  size_t i = 0;
  auto num = [&](size_t& p) {
    size_t start = p;
    while (p < s.size() && std::isdigit(static_cast<unsigned char>(s[p]))) ++p;
    if (p == start) bad("bad CPU list '" + s + "' (e.g. 0-3,6)");
    return std::stoi(s.substr(start, p - start));
  };
  while (i < s.size()) {
    int a = num(i), b = a;
    if (i < s.size() && s[i] == '-') {
      ++i;
      b = num(i);
    }
    if (b < a) bad("bad CPU range in '" + s + "'");
    for (int c = a; c <= b; ++c) out.push_back(c);
    if (i < s.size()) {
      if (s[i] != ',') bad("bad CPU list '" + s + "' (e.g. 0-3,6)");
      ++i;
    }
  }
  if (out.empty()) bad("empty CPU list");
  return out;
}

void PerfOptions::validate() const { validate(backends::Registry()); }

void PerfOptions::validate(const backends::Registry& reg) const {
  if (targets.empty() && emu.devices == 0)
    bad("no target: give controller handles (emu:NAME, embedded[:SIZE], a PCI address), a block device or "
        "file for kernel engines, or --emu-devices N");
  if (engine != Engine::unvme && emu.devices) bad("--emu-devices needs --engine unvme");
  if (bs == 0 || bs % 512) bad(fmt::format("--bs {} must be a positive multiple of 512", bs));
  if (qd == 0) bad("--qd must be at least 1");
  if (qd > 65535) bad("--qd must be at most 65535");
  if (threads == 0) bad("--threads must be at least 1");
  if (threads > 1024) bad("--threads must be at most 1024");
  if (rwmix > 100) bad("--rwmix must be between 0 and 100");
  if (ios == 0 && !(runtime_s > 0)) bad("give --runtime > 0 or --ios N");
  if (ramp_s < 0) bad("--ramp must not be negative");
  if (offset % 512) bad("--offset must be a multiple of 512");
  if (size && size < bs) bad("--size is smaller than one block (--bs)");
  if (lat_sample == 0) bad("--lat-sample must be at least 1");
  if (mem == MemKind::gpu && !reg.gpu())
    throw Error(Errc::not_supported, "--mem gpu needs the CUDA build of aisio perf (not in this build)");
  if (mem == MemKind::gpu && engine != Engine::unvme)
    throw Error(Errc::invalid_argument, "--mem gpu works with --engine unvme only");
  if (engine != Engine::io_uring && (hipri || sqpoll)) bad("--hipri and --sqpoll apply to --engine io_uring");
  if (engine == Engine::io_uring && hipri && !direct) bad("--hipri (IOPOLL) needs --direct 1");
  if (emu.devices > 256) bad("--emu-devices must be at most 256");
  if (emu.devices && (emu.workers == 0 || emu.workers > 64)) bad("--emu-workers must be between 1 and 64");
  if (emu.devices && emu.lba_size != 512 && emu.lba_size != 4096) bad("--emu-lba must be 512 or 4096");
  if (emu.devices && emu.backing != "null" && emu.backing != "ram") bad("--emu-backing must be null or ram");
}

void add_emu_model_options(CLI::App& app, EmuFarmOptions& o) {
  // The same model options as `aisio emu` (--iops, --bandwidth, --latency-us, --workers,
  // --ns-size, --lba, --backing), prefixed with emu-.
  app.add_option("--emu-devices", o.devices,
                 "Start N software controllers in this process (one namespace each, null backing) and use them "
                 "as the targets");
  add_parsed(app, "--emu-ns-size,--emu-size", o.ns_bytes, parse_size,
             "Namespace size of each software controller (default 1T)");
  app.add_option("--emu-lba", o.lba_size, "LBA size of the software controllers' namespace (512 or 4096)");
  add_parsed(app, "--emu-iops", o.iops, parse_rate,
             "Device model: commands per second per controller (e.g. 3.86M for a PM1753); 0: unlimited");
  add_parsed(app, "--emu-bw,--emu-bandwidth", o.bandwidth, parse_rate,
             "Device model: bytes per second per controller, decimal units (e.g. 14.5G); 0: unlimited");
  app.add_option("--emu-latency-us", o.latency_us, "Device model: fixed latency added to every I/O (us)");
  app.add_option("--emu-workers", o.workers, "I/O worker threads per software controller (default 1)");
  app.add_option("--emu-backing", o.backing, "Namespace backing of the software controllers: null (default) or ram");
}

void add_shared_options(CLI::App& app, SharedOptions& o, const char* qd_help) {
  app.add_option("targets", o.targets,
                 "Controllers (emu:NAME, embedded[:SIZE], PCI address); for perf run's io_uring/psync, block "
                 "devices or files");
  app.add_option("--nsid,-n", o.nsid, "Namespace ID (unvme)");
  add_parsed(app, "--rw", o.rw, parse_rw, "randread (default), read, randwrite, write, randrw, rw");
  add_parsed(app, "--bs,-b", o.bs, parse_size, "I/O size (default 4k)");
  report::add_qd_option(app, o.qd, qd_help);
  add_parsed(app, "--runtime,-r", o.runtime_s, parse_duration, "Measured time after the ramp (default 5s)");
  add_parsed(app, "--size,-s", o.size, parse_size, "Region length (default: to the end of the namespace or file)");
  app.add_option("--seed", o.seed, "Seed of the per-thread LBA generators (thread i uses seed + i)");
  report::add_output_options(app, o);
  add_emu_model_options(app, o.emu);
}

void add_run_options(CLI::App& app, PerfOptions& o) {
  add_shared_options(app, o, "Commands in flight per thread and device");
  add_parsed(app, "--engine,-e", o.engine, parse_engine, "unvme (default), io_uring or psync");
  app.add_option("--rwmix,--rwmixread", o.rwmix, "Read percentage for randrw/rw (default 50)");
  report::add_threads_option(app, o.threads, "Threads; each owns one queue per device");
  add_parsed(app, "--cpus", o.cpus, parse_cpu_list,
             "Cores to pin the threads to, e.g. 0-3 (default: all, round robin)");
  app.add_flag("!--no-pin", o.pin, "Do not pin threads to cores");
  app.add_option("--ios", o.ios, "Per thread: stop after this many I/Os instead of after --runtime");
  add_parsed(app, "--ramp,--ramp_time", o.ramp_s, parse_duration, "Time before measurement starts (default 0)");
  add_parsed(app, "--offset", o.offset, parse_size, "Region start (default 0)");
  add_parsed(app, "--mem", o.mem, parse_mem, "Data buffers: host (default) or gpu (CUDA build only)");
  app.add_option_function<std::string>(
      "--lat",
      [&o](const std::string& s) {
        if (s == "off" || s == "0" || s == "no") o.lat = false;
        else if (s == "on" || s == "1" || s == "yes") o.lat = true;
        else bad("--lat takes on or off");
      },
      "Latency sampling: on (default) or off");
  app.add_option("--lat-sample", o.lat_sample, "Timestamp 1 in N I/Os (default 64; 1 = every I/O)");
  app.add_flag("--hipri", o.hipri, "io_uring: polled completions (IORING_SETUP_IOPOLL)");
  app.add_flag("--sqpoll", o.sqpoll, "io_uring: kernel submission-queue polling thread (IORING_SETUP_SQPOLL)");
  app.add_option("--direct", o.direct, "Kernel engines: O_DIRECT (default 1)");
  app.add_option("--fixedbufs", o.fixed_bufs, "io_uring: registered buffers and files (default 1)");
  app.add_option("--prebuilt-dptr", o.prebuilt_dptr,
                 "unvme: build each slot's PRPs once and submit complete SQEs (default 1); 0 uses submit_io");
  app.add_flag("--terse", o.terse, "Print one line of key=value pairs (totals) instead of the table");
  app.add_flag("!--no-progress", o.progress, "No live progress line");
  app.add_flag("!--no-per-thread", o.per_thread, "Table: only the totals");
  app.add_flag("--callgrind-window", o.callgrind,
               "Under valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no: instrument and collect "
               "only during the measurement (bench/driver-cost)");
}

}  // namespace aisio::perf
