#include "fil/run.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <latch>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/cpu_time.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/units.hpp"
#include "report/table.hpp"

namespace aisio::fil {

namespace fs = std::filesystem;

DropCache parse_drop_cache(const std::string& s) {
  if (s == "auto") return DropCache::auto_;
  if (s == "drop_caches") return DropCache::drop_caches;
  if (s == "fadvise") return DropCache::fadvise;
  if (s == "none") return DropCache::none;
  throw Error(Errc::invalid_argument, "--drop-cache '" + s + "': use auto, drop_caches, fadvise or none");
}

namespace {

struct Outcome {
  enum Kind : uint8_t { pending, ok, bad_hash, bad_size, io_error } kind = pending;
  uint64_t size = 0;
  std::string error;
};

struct Shared {
  const Manifest* m;
  bool verify;
  std::vector<Outcome> out;
  std::atomic<uint64_t> bytes{0}, files{0};
};

class VerifySink final : public io::FileSink {
 public:
  explicit VerifySink(Shared& sh) : sh_(sh) {}
  ~VerifySink() override {
    for (auto* s : pool_) XXH3_freeState(s);
    for (auto& [id, l] : live_) XXH3_freeState(l.st);
  }
  void begin(const io::FileTask& f, uint64_t) override {
    Live l;
    if (sh_.verify) {
      if (pool_.empty()) {
        l.st = XXH3_createState();
        if (!l.st) throw Error(Errc::no_memory, "XXH3_createState");
      } else {
        l.st = pool_.back();
        pool_.pop_back();
      }
      XXH3_64bits_reset(l.st);
    }
    live_[f.id] = l;
  }
  void data(const io::FileTask& f, uint64_t, const uint8_t* p, size_t n) override {
    auto& l = live_[f.id];
    if (l.st) XXH3_64bits_update(l.st, p, n);
    l.got += n;
    sh_.bytes.fetch_add(n, std::memory_order_relaxed);
  }
  void end(const io::FileTask& f, const std::string& error) override {
    auto it = live_.find(f.id);
    Live l = it->second;
    live_.erase(it);
    Outcome& o = sh_.out[f.id];
    const ManifestFile& mf = sh_.m->files[f.id];
    o.size = l.got;
    if (!error.empty()) {
      o.kind = Outcome::io_error;
      o.error = error;
    } else if (sh_.verify && (l.got != mf.size)) {
      o.kind = Outcome::bad_size;
    } else if (sh_.verify) {
      o.kind = XXH3_64bits_digest(l.st) == mf.xxh3 ? Outcome::ok : Outcome::bad_hash;
    } else {
      o.kind = Outcome::ok;
    }
    if (l.st) pool_.push_back(l.st);
    sh_.files.fetch_add(1, std::memory_order_relaxed);
  }

 private:
  struct Live {
    XXH3_state_t* st = nullptr;
    uint64_t got = 0;
  };
  Shared& sh_;
  std::unordered_map<uint32_t, Live> live_;
  std::vector<XXH3_state_t*> pool_;
};

class CaptureSink final : public io::FileSink {
 public:
  void begin(const io::FileTask&, uint64_t size) override { bytes.reserve(size_t(size)); }
  void data(const io::FileTask&, uint64_t off, const uint8_t* p, size_t n) override {
    if (off != bytes.size()) error = fmt::format("bytes out of order at offset {}", off);
    bytes.insert(bytes.end(), p, p + n);
  }
  void end(const io::FileTask&, const std::string& e) override {
    if (!e.empty()) error = e;
  }
  std::vector<uint8_t> bytes;
  std::string error;
};

void progress_line(const std::string& name, uint64_t files, uint64_t nfiles, uint64_t bytes, uint64_t nbytes,
                   double secs, bool final) {
  const int width = 30;
  double frac = nbytes ? double(bytes) / double(nbytes) : (nfiles ? double(files) / double(nfiles) : 1);
  frac = std::min(1.0, frac);
  int fill = int(frac * width + 0.5);
  std::string bar(size_t(fill), '#');
  bar.resize(width, '.');
  fmt::print(stderr, "\r  {:<14} [{}] {:3.0f}%  {}/{} files  {}  {:.2f} GB/s{}", name, bar, frac * 100, files, nfiles,
             format_size(bytes), secs > 0 ? double(bytes) / 1e9 / secs : 0.0, final ? "\n" : "\x1b[K");
  std::fflush(stderr);
}

}  // namespace

std::string drop_cache(DropCache how, const Manifest& m, const RunOptions& o) {
  if (how == DropCache::none) return "none";
  std::string note;
  if (how == DropCache::auto_ || how == DropCache::drop_caches) {
    ::sync();
    const Fd fd(::open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC));
    if (fd && ::write(fd.get(), "1", 1) == 1) return "drop_caches (sync; echo 1 > /proc/sys/vm/drop_caches)";
    note = fmt::format(" (drop_caches refused: {})", std::strerror(errno));
  }
  // posix_fadvise(DONTNEED) on every file of the data set (and the extra files).
  uint64_t n = 0;
  auto advise = [&](const fs::path& p) {
    const Fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd && ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED) == 0) ++n;
  };
  if (!o.local_root.empty())
    for (const auto& f : m.files) advise(fs::path(o.local_root) / f.path);
  for (const auto& p : o.extra_drop_files) advise(p);
  if (n == 0) return "none possible: no local files" + note;
  return fmt::format("posix_fadvise DONTNEED on {} files{}", n, note);
}

std::vector<uint8_t> read_whole(io::FileBackend& path, const io::FileTask& t, std::string* error) {
  CaptureSink sink;
  auto eng = path.make_reader(0);
  eng->read(std::span<const io::FileTask>(&t, 1), sink);
  if (error) *error = sink.error;
  return std::move(sink.bytes);
}

int64_t first_difference(const ManifestFile& f, const std::vector<uint8_t>& got, const std::string& local_root,
                         std::string* how) {
  const uint64_t common = std::min<uint64_t>(got.size(), f.size);
  auto size_diff = [&]() -> int64_t { return got.size() != f.size ? int64_t(common) : -1; };
  if (f.key) {
    if (how) *how = "regenerated content";
    std::vector<uint8_t> exp(1 << 20);
    for (uint64_t off = 0; off < common; off += exp.size()) {
      size_t n = size_t(std::min<uint64_t>(exp.size(), common - off));
      Manifest::expected(f, off, exp.data(), n);
      auto bad = std::mismatch(exp.begin(), exp.begin() + n, got.begin() + off).first;
      if (bad != exp.begin() + n) return int64_t(off + (bad - exp.begin()));
    }
    return size_diff();
  }
  if (!f.blocks.empty()) {
    if (how) *how = "4 KiB block hashes (offset of the first bad block)";
    for (uint64_t b = 0; b * kHashBlock < common && b < f.blocks.size(); ++b) {
      size_t n = size_t(std::min<uint64_t>(kHashBlock, got.size() - b * kHashBlock));
      if (XXH3_64bits(got.data() + b * kHashBlock, n) != f.blocks[b]) return int64_t(b * kHashBlock);
    }
    return size_diff();
  }
  if (!local_root.empty()) {
    if (how) *how = "pread of the mounted file";
    const Fd fd(::open((fs::path(local_root) / f.path).c_str(), O_RDONLY | O_CLOEXEC));
    if (fd) {
      std::vector<uint8_t> b(1 << 20);
      for (uint64_t off = 0; off < common;) {
        ssize_t n = ::pread(fd.get(), b.data(), size_t(std::min<uint64_t>(b.size(), common - off)), off_t(off));
        if (n <= 0) break;
        auto bad = std::mismatch(b.begin(), b.begin() + n, got.begin() + off).first;
        if (bad != b.begin() + n) return int64_t(off + (bad - b.begin()));
        off += uint64_t(n);
      }
      return size_diff();
    }
  }
  if (how) *how = "no source of truth for bytes (no content key, block hashes or mounted file)";
  return -1;
}

bool skip_path(PathResult& r, const Error& e) {
  if (e.code() != Errc::not_supported && e.code() != Errc::invalid_argument && e.code() != Errc::system) return false;
  r.skipped = std::string("skipped: ") + e.what();
  return true;
}

PathResult run_path(io::FileBackend& path, const Manifest& m, const RunOptions& o) {
  PathResult r;
  r.path = path.name();
  r.describe = path.describe();
  r.cache = drop_cache(o.drop, m, o);

  std::vector<io::FileTask> tasks(m.files.size());
  for (size_t i = 0; i < tasks.size(); ++i) tasks[i] = {uint32_t(i), m.files[i].path, m.files[i].size};

  Shared sh;
  sh.m = &m;
  sh.verify = o.verify;
  sh.out.resize(tasks.size());

  const uint32_t nt = std::max<uint32_t>(1, o.threads);
  const uint32_t batch = std::max<uint32_t>(1, o.batch);
  std::atomic<size_t> next{0};
  std::latch ready(nt);
  std::atomic<bool> go{false};
  std::mutex mu;
  std::string fatal;
  std::vector<double> tcpu(nt, 0);
  std::vector<io::ReadStats> tstats(nt);
  std::atomic<uint32_t> running{nt};

  auto worker = [&](uint32_t t) {
    std::unique_ptr<io::FileReader> eng;
    try {
      eng = path.make_reader(t);
    } catch (const std::exception& e) {
      std::lock_guard lk(mu);
      if (fatal.empty()) fatal = e.what();
    }
    ready.count_down();
    go.wait(false);
    if (eng) {
      double c0 = cpu_seconds(RUSAGE_THREAD);
      try {
        VerifySink sink(sh);
        for (;;) {
          size_t b = next.fetch_add(batch);
          if (b >= tasks.size()) break;
          size_t n = std::min<size_t>(batch, tasks.size() - b);
          eng->read(std::span<const io::FileTask>(tasks.data() + b, n), sink);
        }
      } catch (const std::exception& e) {
        std::lock_guard lk(mu);
        if (fatal.empty()) fatal = e.what();
        next.store(tasks.size());
      }
      tcpu[t] = cpu_seconds(RUSAGE_THREAD) - c0;
      tstats[t] = eng->stats();
      eng.reset();
    }
    running.fetch_sub(1);
  };

  std::vector<std::thread> th;
  for (uint32_t t = 0; t < nt; ++t) th.emplace_back(worker, t);
  ready.wait();
  double p0 = cpu_seconds(RUSAGE_SELF);
  double m0 = cpu_seconds(RUSAGE_THREAD);
  auto t0 = std::chrono::steady_clock::now();
  go.store(true);
  go.notify_all();
  const uint64_t total_bytes = m.total_bytes();
  if (o.progress) {
    while (running.load() > 0) {
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      progress_line(r.path, sh.files.load(), tasks.size(), sh.bytes.load(), total_bytes, secs, false);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  for (auto& x : th) x.join();
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.process_cpu_s = cpu_seconds(RUSAGE_SELF) - p0;
  const double main_cpu_s = cpu_seconds(RUSAGE_THREAD) - m0;
  if (o.progress) progress_line(r.path, sh.files.load(), tasks.size(), sh.bytes.load(), total_bytes, r.wall_s, true);
  for (uint32_t t = 0; t < nt; ++t) {
    r.thread_cpu_s += tcpu[t];
    r.stats += tstats[t];
  }
  r.other_cpu_s = std::max(0.0, r.process_cpu_s - r.thread_cpu_s - main_cpu_s);
  r.ran = true;
  if (!fatal.empty()) {
    r.errors++;
    r.problems.push_back({"", "engine failure", fatal, -1});
  }

  for (size_t i = 0; i < tasks.size(); ++i) {
    const Outcome& x = sh.out[i];
    if (x.kind == Outcome::pending) continue;  // not reached (engine failure)
    ++r.files;
    r.bytes += x.size;
    if (x.kind == Outcome::ok) {
      ++r.verified_ok;
      continue;
    }
    if (x.kind == Outcome::io_error) {
      ++r.errors;
      if (r.problems.size() < o.max_report) r.problems.push_back({m.files[i].path, "I/O error", x.error, -1});
      continue;
    }
    ++r.mismatches;
    if (r.problems.size() >= o.max_report) continue;
    Problem p;
    p.file = m.files[i].path;
    p.what = x.kind == Outcome::bad_size ? "size mismatch" : "hash mismatch";
    // Re-read through the same path and compare with the source of truth.
    std::string err, how;
    auto got = read_whole(path, tasks[i], &err);
    if (!err.empty()) {
      p.detail = "re-read failed: " + err;
    } else {
      p.offset = first_difference(m.files[i], got, o.local_root, &how);
      if (p.offset >= 0) {
        std::vector<uint8_t> exp(1);
        bool have = uint64_t(p.offset) < m.files[i].size && Manifest::expected(m.files[i], uint64_t(p.offset), exp.data(), 1);
        p.detail = fmt::format("first difference at byte offset {} (by {})", p.offset, how);
        if (uint64_t(p.offset) < got.size())
          p.detail += have ? fmt::format(": expected 0x{:02x}, read 0x{:02x}", exp[0], got[size_t(p.offset)])
                           : fmt::format(": read 0x{:02x}", got[size_t(p.offset)]);
        else
          p.detail += fmt::format(": read {} bytes, expected {}", got.size(), m.files[i].size);
      } else if (XXH3_64bits(got.data(), got.size()) == m.files[i].xxh3) {
        p.detail = "the re-read matched the manifest (transient)";
      } else {
        p.detail = "differs, offset not located (" + how + ")";
      }
    }
    r.problems.push_back(std::move(p));
  }
  return r;
}

std::string format_table(const std::vector<PathResult>& rs) {
  const report::Table table({{"path", 18, true},
                             {"files", 6},
                             {"MiB", 10},
                             {"seconds", 8},
                             {"files/s", 9},
                             {"GB/s", 7},
                             {"CPU s/GB", 9},
                             {"device s/GB", 11},
                             {"proc s/GB", 10},
                             {"verified", 14, true, 2},
                             {"page cache", 0, true}});
  std::string s = table.header();
  for (const auto& r : rs) {
    if (!r.ran) {
      s += table.row({r.path, r.skipped});
      continue;
    }
    std::string cache = r.cache.substr(0, r.cache.find_first_of(" ("));
    std::string ver = r.passed() ? fmt::format("{}/{} ok", r.verified_ok, r.files)
                                 : fmt::format("{} BAD", r.mismatches + r.errors);
    const double dev = r.device_cpu_s_per_gb();
    s += table.row({r.path, std::to_string(r.files), fmt::format("{:.1f}", double(r.bytes) / (1 << 20)),
                    fmt::format("{:.3f}", r.wall_s), fmt::format("{:.0f}", r.files_per_s()),
                    fmt::format("{:.3f}", r.gb_per_s()), fmt::format("{:.3f}", r.cpu_s_per_gb()),
                    dev < 0 ? std::string("-") : fmt::format("{:.3f}", dev),
                    fmt::format("{:.3f}", r.process_cpu_s_per_gb()), ver, cache});
  }
  return s;
}

nlohmann::ordered_json result_json(const PathResult& r) {
  nlohmann::ordered_json j;
  j["path"] = r.path;
  j["describe"] = r.describe;
  j["ran"] = r.ran;
  if (!r.ran) {
    j["skipped"] = r.skipped;
    return j;
  }
  j["files"] = r.files;
  j["bytes"] = r.bytes;
  j["wall_s"] = r.wall_s;
  j["files_per_s"] = r.files_per_s();
  j["gb_per_s"] = r.gb_per_s();
  j["thread_cpu_s"] = r.thread_cpu_s;
  j["process_cpu_s"] = r.process_cpu_s;
  j["cpu_s_per_gb"] = r.cpu_s_per_gb();
  j["process_cpu_s_per_gb"] = r.process_cpu_s_per_gb();
  j["other_cpu_s"] = r.other_cpu_s;
  if (r.device_cpu_s >= 0) {
    j["device_cpu_s"] = r.device_cpu_s;
    j["device_cpu_s_per_gb"] = r.device_cpu_s_per_gb();
  }
  j["verified_ok"] = r.verified_ok;
  j["mismatches"] = r.mismatches;
  j["errors"] = r.errors;
  j["passed"] = r.passed();
  j["page_cache"] = r.cache;
  j["engine"] = {{"device_reads", r.stats.device_reads},
                 {"device_bytes", r.stats.device_bytes},
                 {"zero_fill_bytes", r.stats.zero_fill_bytes},
                 {"fallback_reads", r.stats.fallback_reads},
                 {"resolve_s", r.stats.resolve_s},
                 {"poll_sleeps", r.stats.poll_sleeps},
                 {"empty_polls", r.stats.empty_polls}};
  auto probs = nlohmann::ordered_json::array();
  for (const auto& p : r.problems) {
    nlohmann::ordered_json q{{"file", p.file}, {"what", p.what}, {"detail", p.detail}};
    if (p.offset >= 0) q["offset"] = p.offset;
    probs.push_back(std::move(q));
  }
  j["problems"] = std::move(probs);
  return j;
}

}  // namespace aisio::fil
