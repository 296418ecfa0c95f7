// `aisio fil run`: read every file of a data set through one or more I/O paths, verify
// each against the manifest, and measure files/s, GB/s and CPU seconds per GB.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "fil/manifest.hpp"
#include "io/engine.hpp"

namespace aisio::fil {

enum class DropCache { auto_, drop_caches, fadvise, none };
DropCache parse_drop_cache(const std::string& s);  // auto, drop_caches, fadvise, none

struct RunOptions {
  uint32_t threads = 1;
  uint32_t batch = 16;             // files a thread takes at a time
  io::ReadOptions engine;        // qd, io_size
  bool verify = true;
  DropCache drop = DropCache::auto_;
  bool progress = false;           // a progress bar on stderr
  uint32_t max_report = 10;        // mismatches located and reported per path
  std::string local_root;          // the data set as a mounted directory ("" if none)
  std::vector<std::string> extra_drop_files;  // also fadvise these (the image behind a loop device)
};

struct Problem {
  std::string file;
  std::string what;                // "hash mismatch", "size mismatch", "I/O error"
  std::string detail;              // the error text, or where the first difference is
  int64_t offset = -1;             // first differing byte, when located
};

struct PathResult {
  std::string path;
  std::string describe;
  bool ran = false;
  std::string skipped;             // why not run
  uint64_t files = 0, bytes = 0;
  uint64_t verified_ok = 0, mismatches = 0, errors = 0;
  double wall_s = 0, thread_cpu_s = 0, process_cpu_s = 0;
  // The process's threads other than the readers and the calling thread: the
  // in-process software controller (unvme's device side), io_uring's io-wq workers.
  double other_cpu_s = 0;
  // CPU of the device side (a software controller, in this process or in homid) when
  // the caller measured it; < 0: not measured (a kernel path's loop device worker).
  // A real SSD costs no host CPU here: the reading threads' column is what remains.
  double device_cpu_s = -1;
  std::string cache;               // what was done to the page cache before the run
  io::ReadStats stats;
  std::vector<Problem> problems;

  double files_per_s() const { return wall_s > 0 ? double(files) / wall_s : 0; }
  double gb_per_s() const { return wall_s > 0 ? double(bytes) / 1e9 / wall_s : 0; }
  double cpu_s_per_gb() const { return bytes ? thread_cpu_s / (double(bytes) / 1e9) : 0; }
  double process_cpu_s_per_gb() const { return bytes ? process_cpu_s / (double(bytes) / 1e9) : 0; }
  double device_cpu_s_per_gb() const { return bytes && device_cpu_s >= 0 ? device_cpu_s / (double(bytes) / 1e9) : -1; }
  bool passed() const { return ran && mismatches == 0 && errors == 0; }
};

// A path that cannot run here (Errc::not_supported, an option it refuses, a system
// refusal) is skipped: records why in r.skipped and returns true. False for any other
// error, which the caller rethrows.
bool skip_path(PathResult& r, const Error& e);
// Reads every file of `m` through `path` and verifies it.
PathResult run_path(io::FileBackend& path, const Manifest& m, const RunOptions& o);
// Drops cached pages of the data set as asked; returns what was done, in words.
std::string drop_cache(DropCache how, const Manifest& m, const RunOptions& o);

// Reads one file completely through `path` into memory (for locating a mismatch).
std::vector<uint8_t> read_whole(io::FileBackend& path, const io::FileTask& t, std::string* error);
// Where `got` first differs from the truth of `f`: the regenerated content, else
// per-block hashes, else the file read with pread under `local_root`. -1: not found.
int64_t first_difference(const ManifestFile& f, const std::vector<uint8_t>& got, const std::string& local_root,
                         std::string* how);

// The comparison table, and the whole run as JSON.
std::string format_table(const std::vector<PathResult>& rs);
nlohmann::ordered_json result_json(const PathResult& r);

}  // namespace aisio::fil
