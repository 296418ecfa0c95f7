// Options of `aisio perf run`: fio-like names, parsed by CLI11 (add_run_options) or
// filled directly by tests and benchmarks.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "report/output.hpp"
#include "target/farm.hpp"

namespace CLI {
class App;
}

namespace aisio::backends {
class Registry;
}

namespace aisio::perf {

enum class Engine { unvme, io_uring, psync };
enum class RwMode { randread, read, randwrite, write, randrw, rw };
enum class MemKind { host, gpu };  // gpu: data buffers in GPU memory (the CUDA build)

const char* engine_name(Engine e);
const char* rw_name(RwMode m);
const char* mem_name(MemKind m);
Engine parse_engine(const std::string& s);
RwMode parse_rw(const std::string& s);
MemKind parse_mem(const std::string& s);

inline bool rw_random(RwMode m) { return m == RwMode::randread || m == RwMode::randwrite || m == RwMode::randrw; }
inline bool rw_mixed(RwMode m) { return m == RwMode::randrw || m == RwMode::rw; }
// Percentage of reads: 100 for reads, 0 for writes, rwmix for the mixed modes.
uint32_t read_percent(RwMode m, uint32_t rwmix);

// Software controllers started inside the perf process (--emu-devices N).
using target::EmuFarmOptions;

// What every block benchmark takes (aisio perf run, aisio perf cuda-run), declared
// once: add_shared_options().
struct SharedOptions : report::Output {
  std::vector<std::string> targets;  // controller handles (unvme) or block devices/files
  uint32_t nsid = 1;
  RwMode rw = RwMode::randread;
  uint32_t bs = 4096;
  uint32_t qd = 32;             // commands in flight per (thread, device); cuda-run: per queue
  double runtime_s = 5;         // measured seconds (after ramp)
  uint64_t size = 0;            // region length in bytes; 0: to the end of the namespace/file
  uint64_t seed = 0x5eed;       // per-thread LCG seed = seed + thread index
  std::string command_line;     // recorded in the report
  EmuFarmOptions emu;
};

struct PerfOptions : SharedOptions {
  Engine engine = Engine::unvme;
  uint32_t rwmix = 50;          // read percentage for randrw / rw
  uint32_t threads = 1;
  std::vector<int> cpus;        // cores to pin threads to (thread i -> cpus[i % n]); empty: 0..ncores-1
  bool pin = true;
  uint64_t ios = 0;             // per thread: stop after this many I/Os (0: use runtime)
  double ramp_s = 0;            // seconds before measurement starts
  uint64_t offset = 0;          // region start in bytes
  MemKind mem = MemKind::host;
  bool lat = true;              // sample latencies
  uint32_t lat_sample = 64;     // timestamp 1 in N I/Os (1: every I/O)
  bool hipri = false;           // io_uring: IORING_SETUP_IOPOLL (polled completions)
  bool sqpoll = false;          // io_uring: IORING_SETUP_SQPOLL (kernel submission thread)
  bool direct = true;           // kernel engines: O_DIRECT
  bool fixed_bufs = true;       // io_uring: registered buffers and files
  bool prebuilt_dptr = true;    // unvme: build each slot's PRP once and use submit(Sqe)
  bool terse = false;           // one key=value line (for shell scripts without a JSON parser)
  bool progress = true;         // live line when stdout is a terminal
  bool per_thread = true;       // text table rows per thread
  bool callgrind = false;       // thread 0 turns callgrind instrumentation on/off around the measurement

  // Throws aisio::Error(invalid_argument) naming the offending option, or
  // not_supported for a backend `reg` lacks (--mem gpu without the CUDA build's).
  void validate(const backends::Registry& reg) const;
  void validate() const;  // with the CPU backends only
};

// Seconds with optional unit: 10, 10s, 500ms, 2m.
double parse_duration(const std::string& s);
// "0-3,6,8-9" -> {0,1,2,3,6,8,9}.
std::vector<int> parse_cpu_list(const std::string& s);

// Adds the shared options (targets, --nsid, --rw, --bs, --qd, --runtime, --size, --seed,
// --json, --output and the --emu-* model options); qd_help says what --qd counts.
void add_shared_options(CLI::App& app, SharedOptions& o, const char* qd_help);
// Adds the run options (the shared ones included) to `app`, writing into `o` when the
// app is parsed.
void add_run_options(CLI::App& app, PerfOptions& o);
// Adds the software-controller options (--emu-devices, --emu-iops, --emu-bw, ...):
// those of `aisio emu` with an emu- prefix.
void add_emu_model_options(CLI::App& app, EmuFarmOptions& o);

}  // namespace aisio::perf
