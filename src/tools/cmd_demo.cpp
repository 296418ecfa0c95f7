// aisio demo: the README's main job on the embedded software controller.
//
//   1. an XFS image holding a generated mixed data set (loop mount as root, else
//      mkfs.xfs -p protofile), with a manifest of XXH3-64 hashes
//   2. an in-process software NVMe controller serving the image (file backing: the
//      namespace's bytes are the image's bytes); its Identify summary
//   3. homid when it is built (else: skipped, said so)
//   4. `fil run` over every CPU path with verification: posix, posix-direct, io_uring
//      (through the kernel's loop device) and unvme (our driver; extents by FIEMAP)
//   5. unmounted: unvme again with extents from the XFS decoder, which reads the
//      namespace through our driver
//   6. the comparison table; everything created is removed again
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "backends/registry.hpp"
#include "common/error.hpp"
#include "common/units.hpp"
#include "target/target.hpp"
#include "fil/image.hpp"
#include "fil/report.hpp"
#include "fil/run.hpp"
#include "fil/session.hpp"
#include "io/engine.hpp"
#include "report/output.hpp"
#include "report/record.hpp"
#include "tools/command.hpp"
#include "tools/identify_report.hpp"

namespace aisio::tools {
namespace {

struct DemoOpts {
  uint64_t files = 300;
  std::string size = "lognormal:384K:1.2:8M";
  uint64_t seed = 7;
  uint32_t threads = 1, qd = 32;
  std::string io_size = "256K", workdir, mode = "auto", json;
  // The unvme readers wait in hybrid polls by default: spinning at a core per reading
  // thread while the software controller needs the same cores is not what is compared.
  std::string poll = "hybrid";
  bool keep = false;
};

std::string homid_binary() {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    // Build tree: <build>/src/tools/aisio -> <build>/src/homi/homid; installed side by side.
    for (auto p : {self.parent_path().parent_path() / "homi" / "homid", self.parent_path() / "homid"})
      if (fs::exists(p, ec)) return p.string();
  }
  return "";
}

// homid as a child process serving the same image with a software controller of its
// own; the demo's unvme then gets its queue pair, DMA memory and extents through it.
class HomidProcess {
 public:
  HomidProcess(const std::string& binary, const std::string& workdir, const std::string& image,
               const std::string& dataset_root) {
    socket_ = workdir + "/homid.sock";
    std::string cfg = workdir + "/homid.toml";
    log_ = workdir + "/homid.log";
    {
      std::ofstream f(cfg);
      f << "[daemon]\nsocket = \"" << socket_ << "\"\nlog_level = \"warn\"\n\n"
        << "[[controller]]\nname = \"image\"\ntype = \"soft\"\n\n"
        << "[[controller.namespace]]\nsize = " << std::filesystem::file_size(image)
        << "\nlba_size = 512\nbacking = \"file:" << image << "\"\n\n"
        << "[[allow]]\nname = \"demo\"\nany = true\ndataset_roots = [\"" << dataset_root << "\"]\n";
    }
    pid_ = ::fork();
    if (pid_ < 0) throw_errno("fork");
    if (pid_ == 0) {
      int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execl(binary.c_str(), "homid", "--config", cfg.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // Wait for the socket to answer.
    for (int i = 0; i < 100; ++i) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        throw Error(Errc::system, "homid exited at start; its log: " + log_text());
      }
      try {
        target::open("homid:" + socket_ + "/image");
        return;
      } catch (const std::exception&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    throw Error(Errc::timeout, "homid did not answer on " + socket_ + " within 10 s; its log: " + log_text());
  }
  ~HomidProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 50; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  const std::string& socket() const { return socket_; }
  // CPU seconds homid's threads have run so far (the device side of 'unvme (homid)'):
  // the on-CPU nanoseconds of /proc/PID/task/*/schedstat, exact where rusage of a
  // child that is still running is not available.
  double cpu_seconds() const {
    double s = 0;
    std::error_code ec;
    for (const auto& t : std::filesystem::directory_iterator(fmt::format("/proc/{}/task", pid_), ec)) {
      std::ifstream f(t.path() / "schedstat");
      uint64_t ns = 0;
      if (f >> ns) s += double(ns) * 1e-9;
    }
    return s;
  }
  std::string log_text() const {
    std::ifstream f(log_);
    return {std::istreambuf_iterator<char>(f), {}};
  }

 private:
  pid_t pid_ = -1;
  std::string socket_, log_;
};

void step(int n, const std::string& what) { fmt::print("\n== {}. {}\n", n, what); }

void demo(const DemoOpts& o) {
  auto t_start = std::chrono::steady_clock::now();
  const bool tty = ::isatty(2);

  step(1, "data set on an XFS image");
  fil::ImageOptions io;
  io.workdir = o.workdir;
  io.mode = o.mode;
  io.gen.count = o.files;
  io.gen.size = fil::SizeDist::parse(o.size);
  io.gen.mix = true;
  io.gen.seed = o.seed;
  io.gen.fanout = 64;
  io.gen.generator = "aisio demo";
  auto img = fil::DatasetImage::create(io);
  img->set_keep(o.keep);
  fmt::print("image {} ({}), made by {}\n", img->image(), format_size(std::filesystem::file_size(img->image())),
             img->mode());
  fmt::print("data set at {} in the file system ({}): {}\n", img->fs_dir(),
             img->mounted() ? "mounted at " + img->data_dir() : "source " + img->data_dir(),
             fil::dataset_summary(img->gen().manifest));
  if (!img->gen().notes.empty()) fmt::print("note: {}\n", img->gen().notes);

  step(2, "software NVMe controller serving the image (in process, file backing)");
  auto ic = target::open("image:" + img->image());
  {
    auto j = identify_json(*ic->controller());
    auto& c = j["controller"];
    fmt::print("controller {}: model '{}', serial '{}', firmware '{}', NVMe {}\n", c["handle"].get<std::string>(),
               c["mn"].get<std::string>(), c["sn"].get<std::string>(), c["fr"].get<std::string>(),
               c["version"].get<std::string>());
    fmt::print("  MQES {} (queue entries {}), MDTS {} ({}), {} I/O queue pairs granted\n", c["mqes"].dump(),
               c["mqes"].get<uint32_t>() + 1, c["mdts"].dump(), format_size(c["mdts_bytes"].get<uint64_t>()),
               c["io_queue_pairs"].dump());
    for (auto& ns : j["namespaces"])
      fmt::print("  namespace {}: {} blocks of {} B = {}\n", ns["nsid"].dump(), ns["nsze"].dump(),
                 ns["lba_size"].dump(), format_size(ns["bytes"].get<uint64_t>()));
  }

  step(3, "homid");
  std::string homid = homid_binary();
  std::unique_ptr<HomidProcess> homid_proc;
  if (homid.empty()) {
    fmt::print("homid is not built in this tree: skipped (unvme drives the controller from this process)\n");
  } else {
    try {
      homid_proc = std::make_unique<HomidProcess>(homid, img->workdir(), img->image(),
                                                  img->mounted() ? img->data_dir() : img->workdir());
      fmt::print("homid started ({}), socket {}: it serves the same image with a software controller of its own;\n"
                 "'unvme (homid)' gets its queue pair, DMA memory and extents through it\n",
                 homid, homid_proc->socket());
    } catch (const std::exception& e) {
      fmt::print("homid could not start: {}: skipped\n", e.what());
    }
  }

  fil::RunOptions ro;
  ro.threads = o.threads;
  ro.engine.qd = o.qd;
  ro.engine.io_size = parse_size(o.io_size);
  ro.engine.poll = io::parse_poll_mode(o.poll);
  ro.progress = tty;
  ro.extra_drop_files = {img->image()};
  std::vector<fil::PathResult> results;
  // unvme_label: what the unvme row is called ("unvme (fiemap)", "unvme (xfs)").
  auto run_paths = [&](fil::Session& s, const std::vector<std::string>& names, const std::string& unvme_label) {
    const auto& m = s.manifest();
    for (const auto& name : names) {
      fil::PathResult r;
      std::unique_ptr<io::FileBackend> p;
      const std::string label = name == "unvme" ? unvme_label : name;
      try {
        p = s.make_path(name, ro.engine);
      } catch (const Error& e) {
        r.path = label;
        r.skipped = std::string("skipped: ") + e.what();
        fmt::print("  {:<18} {}\n", r.path, r.skipped);
        results.push_back(std::move(r));
        continue;
      }
      if (!tty) fmt::print("  {:<18} reading ...\n", label);
      // The device side: homid's threads for a homid row, this process's other threads
      // (the in-process software controller) for the other unvme rows.
      const bool via_homid = name == "unvme" && homid_proc && label.find("homid") != std::string::npos;
      const double h0 = via_homid ? homid_proc->cpu_seconds() : 0;
      r = fil::run_path(*p, m, ro);
      if (via_homid)
        r.device_cpu_s = homid_proc->cpu_seconds() - h0;
      else if (name == "unvme")
        r.device_cpu_s = r.other_cpu_s;
      r.path = label;
      results.push_back(std::move(r));
    }
  };

  // The unvme row through homid's controller "image"; extents as UnvmeSpec::extents (auto, xfs).
  auto run_homid = [&](const std::string& dir, const std::string& extents, const std::string& label) {
    fil::UnvmeSpec hs;
    hs.via = "homid";
    hs.homid_socket = homid_proc->socket();
    hs.homid_controller = "image";
    hs.extents = extents;
    fil::Session sh(dir, hs);
    run_paths(sh, {"unvme"}, label);
  };

  fil::UnvmeSpec spec;
  spec.opened = ic;
  ro.local_root = img->data_dir();
  if (img->mounted()) {
    step(4, "fil run on the mounted file system: every CPU path, every file verified");
    fil::Session s(img->data_dir(), spec);
    run_paths(s, backends::Registry::cpu_file_paths(), "unvme (fiemap)");
    if (homid_proc) run_homid(img->data_dir(), "auto", "unvme (homid)");
    step(5, "unmounted: unvme with extents from the XFS decoder (reading through our driver)");
    img->umount();
    fmt::print("unmounted {}\n", img->image());
  } else {
    step(4, "fil run: kernel paths on the source directory (no mount: " + img->mode() + ")");
    fil::Session s(img->data_dir(), spec);
    auto kernel_paths = backends::Registry::cpu_file_paths();
    std::erase(kernel_paths, "unvme");
    run_paths(s, kernel_paths, "");
    if (homid_proc) run_homid(img->fs_dir(), "xfs", "unvme (homid, xfs)");
    step(5, "unvme on the image: extents from the XFS decoder (reading through our driver)");
  }
  {
    ro.local_root.clear();
    fil::UnvmeSpec xs = spec;
    xs.extents = "xfs";
    fil::Session s(img->fs_dir(), xs);
    s.manifest();
    fmt::print("manifest: {}\n", s.manifest_source());
    run_paths(s, {"unvme"}, "unvme (xfs)");
  }

  step(6, "results");
  fmt::print("{}", fil::format_table(results));
  bool ok = true;
  for (const auto& r : results) {
    for (const auto& p : r.problems) fmt::print("{}: {}: {}: {}\n", r.path, p.file, p.what, p.detail);
    if (r.ran && !r.passed()) ok = false;
  }
  for (const auto& r : results)
    if (r.ran) fmt::print("  {:<18} {}\n", r.path, r.describe);
  if (!results.empty()) fmt::print("page cache before each path: {}\n", results.front().cache);
  fmt::print("CPU s/GB: the reading threads' CPU time per GB (what a real SSD would cost too); device s/GB: the "
             "software controller's threads (unvme's device side, which a real SSD does not take from the host: in "
             "this process, or in homid for unvme (homid)); proc s/GB: this whole process (for io_uring it includes "
             "the kernel's io-wq workers). posix, posix-direct and io_uring read through the kernel's loop device, "
             "whose worker threads are not counted ('-').\n");
  fmt::print("machine: {}\n", report::machine_line(report::machine_info()));

  if (!o.json.empty()) {
    fil::RunRecord rec;
    rec.dir = img->fs_dir();
    rec.manifest = &img->gen().manifest;
    rec.manifest_from = "generated by aisio demo";
    rec.options = ro;
    rec.results = results;
    rec.unvme_target = "image:" + img->image();
    rec.notes = {"data set made by " + img->mode()};
    report::emit_json(fil::run_json(rec), report::Output{.json = false, .json_file = o.json});
  }

  homid_proc.reset();
  ic.reset();
  std::string where = img->workdir();
  img.reset();  // unmount (if still mounted) and remove what was created
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  fmt::print("\ncleaned up {}{}; demo took {:.1f} s: {}\n", where, o.keep ? " (kept: --keep)" : "", secs,
             ok ? "every path verified every byte" : "VERIFICATION FAILED");
  if (!ok) throw Error(Errc::io, "verification failed");
}

CommandRegistrar reg(90, [](CLI::App& app) {
  auto o = std::make_shared<DemoOpts>();
  auto* c = app.add_subcommand(
      "demo", "The main job: an XFS image with a mixed data set on a software NVMe controller, read and verified "
              "through every CPU path");
  c->add_option("--files", o->files, "Files in the data set (mixed sizes)")->capture_default_str();
  c->add_option("--size", o->size, "Size distribution (see `aisio fil gen --help`)")->capture_default_str();
  c->add_option("--seed", o->seed, "Data set seed")->capture_default_str();
  c->add_option("--threads,-t", o->threads, "Reading threads per path")->capture_default_str();
  c->add_option("--qd", o->qd, "Reads in flight per thread")->capture_default_str();
  c->add_option("--io-size", o->io_size, "Bytes per read")->capture_default_str();
  c->add_option("--poll", o->poll, "unvme: spin or hybrid (sleep through most of each wait, see `aisio fil run --help`)")
      ->capture_default_str();
  c->add_option("--workdir", o->workdir, "Where the image goes (default: a new directory under $TMPDIR or /tmp)");
  c->add_option("--mode", o->mode, "auto (loop mount when root), mount, protofile")->capture_default_str();
  c->add_option("--json", o->json, "Write the results as JSON to FILE");
  c->add_flag("--keep", o->keep, "Keep the image and work directory");
  c->callback([o] { demo(*o); });
});

}  // namespace
}  // namespace aisio::tools
