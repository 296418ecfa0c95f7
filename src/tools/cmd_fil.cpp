// aisio fil {gen,run,paths}: the file data set benchmark.
//
//   aisio fil gen DIR [--count N | --total SIZE] [--size DIST] [--fanout N] [--mix] [--seed S]
//   aisio fil run DIR [--paths posix,posix-direct,io_uring,unvme] [--threads N] [--qd N]
//                     [--io-size SIZE] [--batch N] [--target HANDLE] [--extents MODE] [--poll MODE] [--json]
//   aisio fil paths
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ranges>

#include "backends/gpus.hpp"
#include "common/error.hpp"
#include "fil/gen.hpp"
#include "fil/image.hpp"
#include "fil/report.hpp"
#include "fil/run.hpp"
#include "fil/session.hpp"
#include "io/engine.hpp"
#include "report/output.hpp"
#include "report/record.hpp"
#if defined(AISIO_HAVE_GPU)
#include "gpu/fil_gpu.hpp"
#endif
#include "tools/backends.hpp"
#include "tools/command.hpp"
#include "common/units.hpp"

namespace aisio::tools {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  for (auto item : std::views::split(s, ','))
    if (!item.empty()) out.emplace_back(item.begin(), item.end());
  return out;
}

std::vector<std::string> expand_paths(const std::string& spec) {
  if (spec == "cpu") return backends::Registry::cpu_file_paths();
  if (spec == "all") {
    std::vector<std::string> v;
    for (const auto& p : tool_backends().file_paths()) v.push_back(p.name);
    return v;
  }
  return split_list(spec);
}

// ---- gen ---------------------------------------------------------------------------
struct GenOpts {
  std::string dir;
  uint64_t count = 300;
  std::string total, size = "lognormal:256K:1.5:8M", fragment_piece = "16K", progress = "auto";
  uint32_t fanout = 64;
  bool mix = false, block_hashes = false, no_sync = false, json = false;
  uint64_t seed = 1;
};

fil::GenOptions gen_options(const GenOpts& o) {
  fil::GenOptions g;
  g.count = o.count;
  if (!o.total.empty()) g.total = parse_size(o.total);
  g.size = fil::SizeDist::parse(o.size);
  g.fanout = o.fanout;
  g.mix = o.mix;
  g.seed = o.seed;
  g.block_hashes = o.block_hashes;
  g.fragment_piece = uint32_t(parse_size(o.fragment_piece));
  if (g.fragment_piece < 4096 || g.fragment_piece % 4096)
    throw Error(Errc::invalid_argument, "--fragment-piece must be a multiple of 4096");
  g.sync = !o.no_sync;
  g.generator = report::own_command_line();
  return g;
}

void do_gen(const GenOpts& o) {
  fil::GenOptions g = gen_options(o);
  if (o.progress != "auto" && o.progress != "on" && o.progress != "off")
    throw Error(Errc::invalid_argument, "--progress: use auto, on or off");
  const bool tty = o.progress == "on" || (o.progress == "auto" && !o.json && ::isatty(2));
  if (tty)
    g.progress = [last = 0.0](uint64_t done, uint64_t total) mutable {
      double f = total ? double(done) / double(total) : 1;
      if (f - last < 0.01 && done != total) return;
      last = f;
      fmt::print(stderr, "\r  writing {:3.0f}%  {:.1f} / {:.1f} MiB\x1b[K", f * 100, double(done) / (1 << 20),
                 double(total) / (1 << 20));
    };
  auto r = fil::generate(o.dir, g);
  if (tty) fmt::print(stderr, "\n");
  if (o.json) {
    nlohmann::ordered_json j{{"dir", o.dir},
                             {"files", r.manifest.files.size()},
                             {"bytes", r.manifest.total_bytes()},
                             {"directories", r.directories},
                             {"kinds", r.kinds},
                             {"seed", o.seed},
                             {"size", g.size.describe()},
                             {"seconds", r.seconds},
                             {"manifest", o.dir + "/" + fil::kManifestName}};
    if (!r.notes.empty()) j["notes"] = r.notes;
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("{}: {} in {} directories, {:.2f} s\n", o.dir, fil::dataset_summary(r.manifest), r.directories,
             r.seconds);
  fmt::print("sizes {}, seed {}, manifest {}/{}\n", g.size.describe(), o.seed, o.dir, fil::kManifestName);
  if (!r.notes.empty()) fmt::print("note: {}\n", r.notes);
}

void add_gen_options(CLI::App& c, GenOpts& g) {
  c.add_option("--count,-n", g.count, "Files (the --mix files included)")->capture_default_str();
  c.add_option("--total", g.total, "Instead of --count: regular files until their bytes reach SIZE");
  c.add_option("--size", g.size, "fixed:SIZE | uniform:MIN:MAX | lognormal:MEDIAN:SIGMA[:MAX]")
      ->capture_default_str();
  c.add_option("--fanout", g.fanout, "Entries per directory at most")->capture_default_str();
  c.add_flag("--mix", g.mix,
                "Add the awkward files: empty, 1-byte, unaligned tails, sparse (holes, unwritten), fragmented");
  c.add_option("--seed", g.seed, "Same seed, same data set")->capture_default_str();
  c.add_flag("--block-hashes", g.block_hashes, "Also store an XXH3-64 per 4 KiB block in the manifest");
  c.add_option("--fragment-piece", g.fragment_piece, "Extent size of fragmented files")->capture_default_str();
  c.add_flag("--no-sync", g.no_sync, "Do not syncfs() at the end");
}

// ---- scenario ----------------------------------------------------------------------
// The data set on an XFS file system, read mounted and then unmounted, for scripts
// (bench/fil/emu-compare, testbed/suites/fil.sh, bench/gpu/device-run): one
// fil::DatasetImage (as `aisio demo` uses), then `aisio fil run` commands.
struct ScenarioOpts : GenOpts {
  std::string image, image_size = "0", device, mnt, workdir, fs = "xfs", before, between, after;
  bool keep_xfs = false;
  std::vector<std::string> mounted, unmounted;
};

std::string expand(std::string args, const fil::DatasetImage& img, const std::string& manifest) {
  for (auto [key, value] : {std::pair<std::string, std::string>{"{data}", img.data_dir()},
                            {"{image}", img.image()},
                            {"{manifest}", manifest},
                            {"{mnt}", img.data_dir().empty() ? "" : fs::path(img.data_dir()).parent_path().string()}})
    for (size_t at; (at = args.find(key)) != std::string::npos;) args.replace(at, key.size(), value);
  return args;
}

void do_scenario(const ScenarioOpts& o) {
  if (o.image.empty() == o.device.empty()) throw Error(Errc::invalid_argument, "give one of --image and --device");
  fil::ImageOptions io;
  io.gen = gen_options(o);
  io.gen.sync = true;
  io.mode = "mount";
  io.device = o.device;
  io.keep_xfs = o.keep_xfs;
  io.fs = o.fs;
  io.mount_dir = o.mnt;
  io.workdir = o.workdir;
  io.image = o.image;
  io.image_size = parse_size(o.image_size);
  auto img = fil::DatasetImage::create(io);  // the image or device named here stays
  // The manifest outside the file system, for the unmounted runs of a device that is
  // handed to another driver.
  const std::string manifest = img->workdir() + "/manifest.json";
  fs::copy_file(img->data_dir() + "/" + fil::kManifestName, manifest, fs::copy_options::overwrite_existing);
  fmt::print("fil scenario: {} ({}): {}\n", img->image(), img->mode(), fil::dataset_summary(img->gen().manifest));
  std::fflush(stdout);
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  std::vector<std::string> failed;
  auto sh = [&](const std::string& cmd) {
    if (cmd.empty()) return;
    fmt::print("fil scenario: {}\n", cmd);
    std::fflush(stdout);
    if (std::system(cmd.c_str()) != 0) failed.push_back(cmd);
  };
  sh(expand(o.before, *img, manifest));
  for (const auto& a : o.mounted) sh(report::shell_quote(self) + " fil run " + expand(a, *img, manifest));
  img->umount();
  sh(expand(o.between, *img, manifest));
  for (const auto& a : o.unmounted) sh(report::shell_quote(self) + " fil run " + expand(a, *img, manifest));
  sh(expand(o.after, *img, manifest));
  if (!failed.empty()) {
    std::string list;
    for (const auto& f : failed) list += "\n  " + f;
    throw Error(Errc::io, fmt::format("fil scenario: {} of the commands failed:{}", failed.size(), list));
  }
}

// ---- run ---------------------------------------------------------------------------
struct RunOpts : report::Output {
  std::string dir, paths = "cpu", io_size = "256K", dest = "host", drop = "auto", progress = "auto", poll = "spin";
  std::string manifest, gpus;
  uint32_t threads = 1, qd = 32, batch = 16, max_report = 10;
  bool no_verify = false;
  fil::UnvmeSpec unvme;
  std::string fs_offset;
};

void do_run(const RunOpts& o) {
  if (o.dest != "host") {
    if (o.dest == "gpu")
      throw Error(Errc::not_supported, "--dest gpu: not built: needs the CUDA issue (GPU memory as destination)");
    throw Error(Errc::invalid_argument, "--dest '" + o.dest + "': use host (gpu comes with the CUDA issue)");
  }
  const io::PollMode poll = io::parse_poll_mode(o.poll);  // before the session: a typo fails fast
  [[maybe_unused]] const std::vector<int> gpus = backends::parse_gpu_list(o.gpus);  // GPU paths
  fil::UnvmeSpec spec = o.unvme;
  if (!o.fs_offset.empty()) spec.fs_offset = parse_size(o.fs_offset);
  fil::Session s(o.dir, spec, o.manifest);
  const fil::Manifest& m = s.manifest();

  fil::RunOptions ro;
  ro.threads = o.threads;
  ro.batch = o.batch;
  ro.engine.qd = o.qd;
  ro.engine.io_size = parse_size(o.io_size);
  ro.engine.poll = poll;
  ro.verify = !o.no_verify;
  ro.drop = fil::parse_drop_cache(o.drop);
  ro.max_report = o.max_report;
  ro.local_root = s.local() ? o.dir : "";
  if (o.progress == "on") ro.progress = true;
  else if (o.progress == "auto") ro.progress = ::isatty(2);
  else if (o.progress != "off") throw Error(Errc::invalid_argument, "--progress: use auto, on or off");

  fil::RunRecord rec;
  rec.dir = o.dir;
  rec.manifest = &m;
  rec.manifest_from = s.manifest_source();
  rec.options = ro;
  if (!o.json) {
    fmt::print("data set: {}\n          manifest {}\n", fil::dataset_summary(m), rec.manifest_from);
    fmt::print("threads {}, qd {}, io size {}, batch {} files; verify: {}\n", ro.threads, ro.engine.qd,
               format_size(ro.engine.io_size), ro.batch, ro.verify ? "XXH3-64 of every file" : "off");
  }
  for (const auto& name : expand_paths(o.paths)) {
    fil::PathResult r;
    r.path = name;
#if defined(AISIO_HAVE_GPU)
    const auto* info = tool_backends().find_file_path(name);
    if (info && info->gpu) {  // the CUDA build's GPU paths
      if (!o.json) fmt::print("  {:<14} reading ...\n", name);
      r = gpu::run_fil_path(s, name, ro, gpus);
      if (!r.ran && !o.json) fmt::print("  {:<14} {}\n", name, r.skipped);
      rec.results.push_back(std::move(r));
      continue;
    }
#endif
    std::unique_ptr<io::FileBackend> p;
    try {
      p = s.make_path(name, ro.engine);
    } catch (const Error& e) {
      if (!fil::skip_path(r, e)) throw;
      if (!o.json) fmt::print("  {:<14} {}\n", name, r.skipped);
      rec.results.push_back(std::move(r));
      continue;
    }
    if (name == "unvme") {
      rec.unvme_target = s.unvme_target();
      rec.extents = s.extent_source()->describe();
      auto img = s.image_file();
      if (!img.empty()) ro.extra_drop_files = {img};
    }
    if (!o.json && !ro.progress) fmt::print("  {:<14} reading ...\n", name);
    r = fil::run_path(*p, m, ro);
    rec.results.push_back(std::move(r));
  }
  rec.notes = s.notes;
  bool ran = false, ok = true;
  uint64_t bad = 0;
  for (const auto& r : rec.results) {
    if (r.ran) ran = true;
    if (r.ran && !r.passed()) {
      ok = false;
      bad += r.mismatches + r.errors;
    }
  }
  if (!report::emit_json(fil::run_json(rec), o)) {
    fmt::print("\n{}", fil::format_table(rec.results));
    for (const auto& r : rec.results)
      for (const auto& p : r.problems)
        fmt::print("{}: {}{}: {}\n", r.path, p.file.empty() ? "" : p.file + ": ", p.what, p.detail);
    for (const auto& r : rec.results)
      if (r.ran) fmt::print("  {:<14} {}\n", r.path, r.describe);
    {
      std::vector<std::string> seen;
      for (const auto& r : rec.results)
        if (r.ran && std::find(seen.begin(), seen.end(), r.cache) == seen.end()) seen.push_back(r.cache);
      for (const auto& c : seen) fmt::print("page cache before each path: {}\n", c);
    }
    for (const auto& n : rec.notes) fmt::print("note: {}\n", n);
    fmt::print("CPU s/GB: CPU time of the reading threads per GB read; proc s/GB: of the whole process (an "
               "in-process software controller's threads included)\n");
    fmt::print("machine: {}\ncommit: {}\n", report::machine_line(report::machine_info()), report::build_commit());
  }
  if (!ok) throw Error(Errc::io, fmt::format("verification failed: {} file(s) bad", bad));
  // Paths named one by one are required: a skipped one fails the command. Only the
  // groups (cpu, all) may skip what cannot run here.
  if (o.paths != "cpu" && o.paths != "all") {
    std::string missed;
    for (const auto& r : rec.results)
      if (!r.ran) missed += fmt::format("{}{} ({})", missed.empty() ? "" : "; ", r.path, r.skipped);
    if (!missed.empty())
      throw Error(Errc::not_supported,
                  "--paths named a path that did not run: " + missed +
                      ". Leave it out, or use --paths cpu or all to run only what works here");
  }
  if (!ran) throw Error(Errc::not_supported, "no path could run here (see the reasons above)");
}

CommandRegistrar reg(50, [](CLI::App& app) {
  auto* fil = app.add_subcommand(
      "fil", "fil (file load): a data set of files: generate it, read it through every I/O path, verify every byte");
  fil->require_subcommand(1);

  auto g = std::make_shared<GenOpts>();
  auto* gen = fil->add_subcommand("gen", "Create a deterministic data set with a manifest of XXH3-64 hashes");
  gen->add_option("dir", g->dir, "Directory to create (empty, or a previous data set)")->required();
  add_gen_options(*gen, *g);
  gen->add_flag("--json", g->json, "JSON summary");
  gen->add_option("--progress", g->progress, "auto (on a terminal), on, off")->capture_default_str();
  gen->callback([g] { do_gen(*g); });

  auto r = std::make_shared<RunOpts>();
  auto* run = fil->add_subcommand("run", "Read every file of a data set through I/O paths and verify it");
  run->add_option("dir", r->dir,
                  "The data set: a directory here (mounted), or its path inside an unmounted XFS file system "
                  "(with --target)")
      ->required();
  run->add_option("--paths", r->paths,
                  "Comma-separated paths, each required (one that cannot run here fails the command), or the "
                  "group cpu (posix,posix-direct,io_uring,unvme) or all, which skip what cannot run; see `aisio "
                  "fil paths`")
      ->capture_default_str();
  report::add_threads_option(*run, r->threads, "Reading threads per path");
  report::add_qd_option(*run, r->qd, "Reads in flight per thread (io_uring, unvme)");
  run->add_option("--io-size", r->io_size, "Bytes per read (a multiple of 4 KiB)")->capture_default_str();
  run->add_option("--batch", r->batch, "Files a thread takes at a time")->capture_default_str();
  run->add_option("--dest", r->dest, "Destination memory: host (gpu comes with the CUDA issue)")
      ->capture_default_str();
  run->add_flag("--no-verify", r->no_verify, "Do not hash and compare (raw read speed)");
  run->add_option("--drop-cache", r->drop,
                  "Before each path: auto (drop_caches when permitted, else fadvise), drop_caches, fadvise, none")
      ->capture_default_str();
  run->add_option("--progress", r->progress, "auto (on a terminal), on, off")->capture_default_str();
  run->add_option("--manifest", r->manifest, "Manifest file (default DIR/manifest.json, or read from the image)");
  run->add_option("--max-report", r->max_report, "Bad files located and reported per path")->capture_default_str();
  report::add_output_options(*run, *r);
  run->add_option("--target", r->unvme.target,
                  "unvme: image:PATH (in-process software controller over an image file), emu:NAME, embedded, or a "
                  "PCI address; default: the image behind DIR's loop device");
  run->add_option("--extents", r->unvme.extents, "unvme: auto, fiemap, xfs, homid")->capture_default_str();
  run->add_option("--via", r->unvme.via, "unvme: homid (queue pairs, memory and extents through the daemon)");
  run->add_option("--homid-socket", r->unvme.homid_socket, "--via homid: the socket (default $HOMID_SOCKET or "
                                                          "/run/homid/homid.sock)");
  run->add_option("--homid-controller", r->unvme.homid_controller, "--via homid: controller name or index")
      ->capture_default_str();
  run->add_option("--function", r->unvme.homid_function,
                  "--via homid: vf = an SR-IOV virtual function granted by homid, driven by this process "
                  "(--homid-controller names the sriov-pf)");
  run->add_option("--poll", r->poll,
                  "unvme: spin (busy-poll the queue pair) or hybrid (sleep in halving steps towards the "
                  "measured wait for completions, a quarter of the time waited once it runs late: less CPU on "
                  "a slow device)")
      ->capture_default_str();
  run->add_option("--gpus", r->gpus,
                  "GPU paths: CUDA devices to spread the files over, e.g. 0,1 (each its own queues and buffer; a "
                  "device may repeat: 0,0). Default: 0");
  run->add_option("--nsid", r->unvme.nsid, "unvme: namespace")->capture_default_str();
  run->add_option("--fs-offset", r->fs_offset, "unvme: byte offset of the file system in the namespace");
  run->add_option("--fs-root", r->unvme.fs_root, "unvme with --extents xfs: DIR's path inside the file system");
  run->add_option("--lba-size", r->unvme.lba_size, "image: targets: LBA size (512 or 4096)")->capture_default_str();
  run->add_option("--emu-workers", r->unvme.emu_workers, "image: targets: I/O threads of the software controller")
      ->capture_default_str();
  run->callback([r] { do_run(*r); });

  auto sc = std::make_shared<ScenarioOpts>();
  sc->mix = true;
  auto* scn = fil->add_subcommand(
      "scenario", "A data set on XFS (mkfs, mount, fil gen), `fil run` on it mounted, unmount, `fil run` unmounted");
  scn->add_option("--image", sc->image, "Create this sparse image file (loop mount)");
  scn->add_option("--image-size", sc->image_size, "Size of --image (0: from the data set)")->capture_default_str();
  scn->add_option("--device", sc->device, "Or this block device (or an existing image)");
  scn->add_option("--fs", sc->fs, "xfs, ext4 (no unmounted runs: the decoder reads XFS) or auto (xfs where "
                                  "mkfs.xfs is installed)")
      ->capture_default_str();
  scn->add_flag("--keep-xfs", sc->keep_xfs, "--device: keep the XFS it holds (a previous data set is replaced)");
  scn->add_option("--mnt", sc->mnt, "Mount point (default: in the work directory)");
  scn->add_option("--workdir", sc->workdir, "Where the mount point and the manifest copy go (default: a new one)");
  add_gen_options(*scn, *sc);
  scn->add_option("--before", sc->before, "Shell command once the data set is made, before the mounted runs");
  scn->add_option("--mounted", sc->mounted,
                  "`fil run` arguments while mounted (repeatable); {data} {mnt} {image} {manifest} are replaced");
  scn->add_option("--between", sc->between, "Shell command after unmounting (e.g. aisio bind --driver uio BDF)");
  scn->add_option("--unmounted", sc->unmounted,
                  "`fil run` arguments after unmounting (repeatable), e.g. '/data --target image:{image} --extents "
                  "xfs --manifest {manifest}'");
  scn->add_option("--after", sc->after, "Shell command at the end");
  scn->callback([sc] { do_scenario(*sc); });

  auto* paths = fil->add_subcommand("paths", "List the I/O paths and whether they are built");
  paths->callback([] {
    for (const auto& p : tool_backends().file_paths())
      fmt::print("{:<18} {:<6} {}{}\n", p.name, p.built ? "built" : "-", p.summary,
                 p.built ? "" : "  [" + p.why_not + "]");
  });
});

}  // namespace
}  // namespace aisio::tools
