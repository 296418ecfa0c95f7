#include "fil/gen.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <ranges>
#include <set>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/units.hpp"
#include "fil/content.hpp"

namespace aisio::fil {

namespace {

// A size of the distribution: the command line's units (common/units.hpp), the error
// naming the whole distribution.
uint64_t parse_bytes(const std::string& s, const std::string& spec) {
  try {
    return parse_size(s);
  } catch (const Error& e) {
    throw Error(Errc::invalid_argument, "size distribution '" + spec + "': " + e.what());
  }
}

}  // namespace

SizeDist SizeDist::parse(const std::string& text) {
  std::vector<std::string> p;
  for (auto part : std::views::split(text, ':')) p.emplace_back(part.begin(), part.end());
  if (p.empty()) p.emplace_back();  // "": no kind
  SizeDist d;
  if (p[0] == "fixed" && p.size() == 2) {
    d.kind = fixed;
    d.a = parse_bytes(p[1], text);
  } else if (p[0] == "uniform" && p.size() == 3) {
    d.kind = uniform;
    d.a = parse_bytes(p[1], text);
    d.b = parse_bytes(p[2], text);
    if (d.b < d.a) throw Error(Errc::invalid_argument, "size distribution '" + text + "': MAX < MIN");
  } else if (p[0] == "lognormal" && (p.size() == 3 || p.size() == 4)) {
    d.kind = lognormal;
    d.a = parse_bytes(p[1], text);
    try {
      d.sigma = std::stod(p[2]);
    } catch (...) {
      throw Error(Errc::invalid_argument, "size distribution '" + text + "': bad sigma");
    }
    if (!(d.sigma >= 0 && d.sigma <= 8)) throw Error(Errc::invalid_argument, "size distribution '" + text + "': sigma out of [0, 8]");
    d.b = p.size() == 4 ? parse_bytes(p[3], text) : 0;
    if (d.a == 0) throw Error(Errc::invalid_argument, "size distribution '" + text + "': median must be > 0");
  } else {
    throw Error(Errc::invalid_argument,
                "size distribution '" + text + "': use fixed:SIZE, uniform:MIN:MAX or lognormal:MEDIAN:SIGMA[:MAX]");
  }
  return d;
}

std::string SizeDist::describe() const {
  switch (kind) {
    case fixed: return fmt::format("fixed:{}", a);
    case uniform: return fmt::format("uniform:{}:{}", a, b);
    case lognormal: return fmt::format("lognormal:{}:{}:{}", a, sigma, b ? b : a * 64);
  }
  return "?";
}

uint64_t SizeDist::sample(Rng& r) const {
  switch (kind) {
    case fixed: return a;
    case uniform: return r.range(a, b);
    case lognormal: {
      double v = double(a) * std::exp(sigma * r.normal());
      uint64_t cap = b ? b : a * 64;
      return std::min<uint64_t>(cap, uint64_t(std::max(1.0, std::floor(v))));
    }
  }
  return a;
}

namespace {

struct Planned {
  ManifestFile f;
  std::vector<Segment> unwritten;  // sparse: preallocated, never written
  int frag_group = -1;             // >= 0: a fragmented file
};

std::vector<Planned> specials(Rng& r) {
  std::vector<Planned> v;
  auto add = [&](std::string kind, uint64_t size) -> Planned& {
    Planned p;
    p.f.kind = std::move(kind);
    p.f.size = size;
    v.push_back(std::move(p));
    return v.back();
  };
  const uint64_t K4 = 4096;
  add("empty", 0);
  for (uint64_t s : {1, 1, 2, 7, 511}) add("tiny", s);
  for (uint64_t t : {1, 511, 513, 2049, 4095}) add("tail", K4 * r.range(1, 64) + t);
  add("tail", (1 << 20) + 1);
  // Sparse files. Segment edges are 4 KiB aligned (so the holes are real holes on a
  // 4 KiB-block file system) except where a file ends.
  {
    uint64_t h = K4 * r.range(16, 64), s = h + K4 * r.range(64, 256) + r.range(1, 4095);
    auto& p = add("sparse", s);  // hole at the start
    p.f.segments = {{h, s - h}};
  }
  {
    uint64_t a = K4 * r.range(8, 32), b = a + K4 * r.range(16, 64), s = b + K4 * r.range(8, 64) + r.range(1, 4095);
    auto& p = add("sparse", s);  // hole in the middle
    p.f.segments = {{0, a}, {b, s - b}};
  }
  {
    uint64_t a = K4 * r.range(8, 64) + r.range(1, 4095), s = (a + 4095) / 4096 * 4096 + K4 * r.range(64, 256);
    auto& p = add("sparse", s);  // hole at the end (truncated up)
    p.f.segments = {{0, a}};
  }
  {
    uint64_t a = K4 * r.range(4, 16), b = a + K4 * r.range(32, 128), s = b + K4 * r.range(8, 32) + r.range(1, 4095);
    auto& p = add("sparse", s);  // unwritten (preallocated) range in the middle
    p.f.segments = {{0, a}, {b, s - b}};
    p.unwritten = {{a, b - a}};
  }
  add("sparse", K4 * r.range(16, 128) + r.range(1, 4095));  // all hole
  for (auto& p : v)
    if (p.f.kind == "sparse") p.f.sparse = true;
  // Fragmented files (allocated piece by piece, interleaved with a spacer file).
  for (int k = 0; k < 4; ++k) add("fragmented", K4 * r.range(64, 320) + r.range(1, 4095)).frag_group = k;
  return v;
}

uint32_t digits(uint64_t n) { return uint32_t(fmt::formatted_size("{}", n)); }

// Directory components of file `i` of `n` with `fanout` entries per directory.
std::string dir_of(uint64_t i, uint64_t n, uint32_t fanout) {
  uint64_t leaves = (n + fanout - 1) / fanout;
  if (leaves <= 1) return "";
  uint32_t depth = 0;
  for (uint64_t cap = 1; cap < leaves; cap *= fanout) ++depth;
  uint64_t d = i / fanout;
  uint32_t w = std::max<uint32_t>(2, digits(fanout - 1));
  std::vector<uint64_t> comps(depth);
  for (uint32_t k = 0; k < depth; ++k) {
    comps[depth - 1 - k] = d % fanout;
    d /= fanout;
  }
  std::string out;
  for (uint64_t c : comps) out += fmt::format("d{:0{}}/", c, w);
  return out;
}

std::vector<Planned> make_plan(const GenOptions& o) {
  if (o.fanout < 2) throw Error(Errc::invalid_argument, "--fanout must be >= 2");
  Rng r(o.seed);
  std::vector<Planned> plan;
  if (o.mix) plan = specials(r);
  uint64_t special_bytes = 0;
  for (auto& p : plan) special_bytes += p.f.size;
  if (o.total > 0) {
    uint64_t bytes = special_bytes;
    while (bytes < o.total) {
      Planned p;
      p.f.kind = "regular";
      p.f.size = std::max<uint64_t>(1, o.size.sample(r));
      bytes += p.f.size;
      plan.push_back(std::move(p));
      if (plan.size() > 10'000'000) throw Error(Errc::invalid_argument, "--total needs more than 10 million files");
    }
  } else {
    while (plan.size() < o.count) {
      Planned p;
      p.f.kind = "regular";
      p.f.size = o.size.sample(r);
      plan.push_back(std::move(p));
    }
  }
  // Fisher-Yates with our own generator: the order is part of the seed's promise.
  for (size_t i = plan.size(); i > 1; --i) std::swap(plan[i - 1], plan[r.below(i)]);
  uint64_t n = plan.size();
  uint32_t w = std::max<uint32_t>(6, digits(n ? n - 1 : 0));
  for (uint64_t i = 0; i < n; ++i) {
    auto& f = plan[i].f;
    f.key = file_key(o.seed, i);
    std::string suffix = f.kind == "regular" ? "" : "-" + f.kind;
    f.path = dir_of(i, n, o.fanout) + fmt::format("f{:0{}}{}.bin", i, w, suffix);
  }
  return plan;
}

}  // namespace

Manifest plan_dataset(const GenOptions& o) {
  Manifest m;
  m.seed = o.seed;
  m.generator = o.generator;
  for (auto& p : make_plan(o)) m.files.push_back(std::move(p.f));
  return m;
}

GenResult generate(const std::string& dir, const GenOptions& o) {
  namespace fs = std::filesystem;
  auto t0 = std::chrono::steady_clock::now();
  GenResult res;
  auto plan = make_plan(o);

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir)) throw Error(Errc::system, "cannot create directory " + dir + ": " + ec.message());
  std::string mpath = dir + "/" + kManifestName;
  if (fs::exists(mpath)) {
    // A previous data set: remove its files (and now-empty directories) first.
    try {
      auto old = Manifest::load(mpath);
      std::set<std::string> dirs;
      for (const auto& f : old.files) {
        fs::remove(dir + "/" + f.path, ec);
        for (auto p = fs::path(f.path).parent_path(); !p.empty(); p = p.parent_path()) dirs.insert(p.string());
      }
      for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) fs::remove(dir + "/" + *it, ec);  // only if empty
    } catch (const Error&) {
    }
    fs::remove(mpath, ec);
  } else if (!fs::is_empty(dir)) {
    throw Error(Errc::invalid_argument, dir + " is not empty and holds no " + kManifestName +
                                            ": give an empty or new directory");
  }

  uint64_t total = 0;
  for (const auto& p : plan) total += p.f.size;
  uint64_t done = 0;
  std::set<std::string> dirs;  // every directory of the data set (parents sort first)
  for (const auto& p : plan)
    for (auto d = fs::path(p.f.path).parent_path(); !d.empty(); d = d.parent_path()) dirs.insert(d.string());
  for (const auto& d : dirs) {
    fs::create_directories(fs::path(dir) / d, ec);
    if (ec) throw Error(Errc::system, "mkdir " + (fs::path(dir) / d).string() + ": " + ec.message());
  }
  res.directories = dirs.size();

  const size_t kBuf = 1 << 20;
  std::vector<uint8_t> buf(kBuf);
  XXH3_state_t* st = XXH3_createState();
  if (!st) throw Error(Errc::no_memory, "XXH3_createState");
  struct StateFree {
    XXH3_state_t* s;
    ~StateFree() { XXH3_freeState(s); }
  } free_st{st};
  bool fallocate_ok = true;

  // Fragmented files first: their pieces are allocated interleaved with a spacer file in
  // the same directory (so in the same allocation group), which is removed afterwards:
  // every piece becomes an extent of its own.
  std::vector<std::string> spacers;
  for (auto& p : plan) {
    if (p.frag_group < 0 || !fallocate_ok) continue;
    std::string path = dir + "/" + p.f.path;
    std::string spacer = (fs::path(path).parent_path() / fmt::format(".spacer-{}", spacers.size())).string();
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) throw_errno("create " + path);
    Fd sp(::open(spacer.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (sp.get() < 0) throw_errno("create " + spacer);
    spacers.push_back(spacer);
    const uint64_t piece = o.fragment_piece;
    for (uint64_t off = 0; off < p.f.size; off += piece) {
      if (::fallocate(fd.get(), 0, off_t(off), off_t(std::min<uint64_t>(piece, p.f.size - off))) != 0 ||
          ::fallocate(sp.get(), 0, off_t(off), off_t(piece)) != 0) {
        if (errno != EOPNOTSUPP) throw_errno("fallocate " + p.f.path);
        fallocate_ok = false;
        res.notes = "fallocate is not supported here: fragmented files were written plainly";
        break;
      }
    }
  }
  for (const auto& sp : spacers) ::unlink(sp.c_str());

  for (auto& p : plan) {
    std::string path = dir + "/" + p.f.path;
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (p.frag_group >= 0 ? 0 : O_TRUNC);
    Fd fd(::open(path.c_str(), flags, 0644));
    if (fd.get() < 0) throw_errno("create " + path);
    auto& f = p.f;
    XXH3_64bits_reset(st);
    if (o.block_hashes) f.blocks.clear();
    if (f.sparse) {
      if (::ftruncate(fd.get(), off_t(f.size)) != 0) throw_errno("truncate " + path);
      for (const auto& u : p.unwritten)
        if (::fallocate(fd.get(), 0, off_t(u.off), off_t(u.len)) != 0) {
          if (errno != EOPNOTSUPP) throw_errno("fallocate " + path);
          if (res.notes.empty()) res.notes = "fallocate is not supported here: no unwritten extents";
        }
    }
    for (uint64_t off = 0; off < f.size; off += kBuf) {
      size_t n = size_t(std::min<uint64_t>(kBuf, f.size - off));
      Manifest::expected(f, off, buf.data(), n);
      if (!f.sparse) {
        pwrite_all(fd.get(), buf.data(), n, off, path);
      } else {
        for (const auto& s : f.segments) {
          uint64_t a = std::max(off, s.off), b = std::min(off + n, s.off + s.len);
          if (a < b) pwrite_all(fd.get(), buf.data() + (a - off), size_t(b - a), a, path);
        }
      }
      XXH3_64bits_update(st, buf.data(), n);
      if (o.block_hashes)
        for (size_t b = 0; b < n; b += kHashBlock)
          f.blocks.push_back(XXH3_64bits(buf.data() + b, std::min<size_t>(kHashBlock, n - b)));
      done += n;
      if (o.progress) o.progress(done, total);
    }
    f.xxh3 = XXH3_64bits_digest(st);
    res.kinds[f.kind]++;
  }

  const Fd dir_fd(o.sync ? ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1);
  if (dir_fd && ::syncfs(dir_fd.get()) != 0) throw_errno("syncfs " + dir);
  res.manifest.seed = o.seed;
  res.manifest.generator = o.generator;
  for (auto& p : plan) res.manifest.files.push_back(std::move(p.f));
  res.manifest.save(mpath);
  if (dir_fd) ::syncfs(dir_fd.get());
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace aisio::fil
