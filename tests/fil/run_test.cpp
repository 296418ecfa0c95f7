// The runner: every path verifies every byte of a mixed data set (local directory,
// loop-mounted XFS image, unmounted XFS image read through our driver); a corrupted
// byte in the image is reported with file and offset; the command line end to end.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.hpp"
#include "common/expect_error.hpp"
#include "common/uring_probe.hpp"
#include "extents/fiemap.hpp"
#include "extents/xfs.hpp"
#include "fil/gen.hpp"
#include "fil/helpers.hpp"
#include "fil/image.hpp"
#include "fil/run.hpp"
#include "fil/session.hpp"
#include "io/engine.hpp"
#include "io/extent_source.hpp"

using aisio::test::expect_error;

using namespace aisio;
using namespace aisio::fil;
using filtest::TempDir;

namespace {

GenOptions mixed(uint64_t count = 60) {
  GenOptions o;
  o.count = count;
  o.size = SizeDist::parse("lognormal:48K:1.2:1M");
  o.mix = true;
  o.seed = 11;
  o.fanout = 16;
  return o;
}

RunOptions run_opts(const std::string& local_root, uint32_t threads = 1) {
  RunOptions r;
  r.threads = threads;
  r.batch = 4;
  r.engine = {8, 64 << 10};
  r.drop = DropCache::fadvise;
  r.local_root = local_root;
  return r;
}

// Runs `names` through `s` and expects every file verified.
void expect_all_pass(Session& s, const std::vector<std::string>& names, const RunOptions& ro) {
  const auto& m = s.manifest();
  for (const auto& n : names) {
    auto p = s.make_path(n, ro.engine);
    auto r = run_path(*p, m, ro);
    std::string probs;
    for (auto& x : r.problems) probs += x.file + ": " + x.what + ": " + x.detail + "\n";
    EXPECT_TRUE(r.passed()) << n << "\n" << probs;
    EXPECT_EQ(r.files, m.files.size()) << n;
    EXPECT_EQ(r.verified_ok, m.files.size()) << n;
    EXPECT_EQ(r.bytes, m.total_bytes()) << n;
    EXPECT_GT(r.wall_s, 0) << n;
  }
}

std::string run_cmd(const std::string& cmd, int* rc) {
  std::string out;
  *rc = run_shell(cmd, &out);
  return out;
}

bool uring_ok() { return uring_available(); }

std::vector<std::string> local_paths() {
  std::vector<std::string> v = {"posix", "posix-direct"};
  if (uring_ok()) v.push_back("io_uring");
  return v;
}

}  // namespace

TEST(FilRun, LocalDirectoryAllKernelPaths) {
  TempDir d;
  generate(d / "ds", mixed());
  UnvmeSpec spec;
  Session s(d / "ds", spec);
  ASSERT_TRUE(s.local());
  expect_all_pass(s, local_paths(), run_opts(d / "ds", 2));
  // unvme needs the controller behind the directory. What that is depends on where the
  // temporary directory lives, so the expectation follows mount_info: not on a block
  // device, or on one no controller of ours serves -> refused with that reason; on a
  // loop device over an image -> the image is served and the path is made.
  std::string not_block;
  io::MountInfo mi;
  try {
    mi = io::mount_info(d / "ds");
  } catch (const Error& e) {
    ASSERT_EQ(e.code(), Errc::not_supported) << e.what();
    not_block = e.what();
  }
  if (!not_block.empty())
    expect_error([&] { s.make_path("unvme", {}); }, Errc::not_supported, not_block);
  else if (mi.backing_file.empty())
    expect_error([&] { s.make_path("unvme", {}); }, Errc::not_supported,
                 "is on " + mi.device + ", which no controller of ours serves from here");
  else
    EXPECT_NE(s.make_path("unvme", {}), nullptr) << "on " << mi.device << " over " << mi.backing_file;
  // The CUDA extension points are named, and say they are not built.
  for (const char* n : {"unvme-gpu", "gpu", "cufile"}) {
    try {
      s.make_path(n, {});
      ADD_FAILURE() << n << " should not be built";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::not_supported);
      EXPECT_NE(std::string(e.what()).find("not built"), std::string::npos) << e.what();
    }
  }
}

TEST(FilRun, PosixMismatchNamesFileAndOffset) {
  TempDir d;
  auto g = generate(d / "ds", mixed(30));
  const ManifestFile* victim = nullptr;
  for (auto& f : g.manifest.files)
    if (f.kind == "regular" && f.size > 5000) victim = &f;
  ASSERT_NE(victim, nullptr);
  const uint64_t off = victim->size - 4321;
  {
    int fd = ::open((d / ("ds/" + victim->path)).c_str(), O_RDWR);
    uint8_t b;
    ASSERT_EQ(::pread(fd, &b, 1, off_t(off)), 1);
    b ^= 0x40;
    ASSERT_EQ(::pwrite(fd, &b, 1, off_t(off)), 1);
    ::close(fd);
  }
  Session s(d / "ds", {});
  auto ro = run_opts(d / "ds");
  auto p = s.make_path("posix", ro.engine);
  auto r = run_path(*p, s.manifest(), ro);
  EXPECT_EQ(r.mismatches, 1u);
  EXPECT_EQ(r.errors, 0u);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].file, victim->path);
  EXPECT_EQ(r.problems[0].offset, int64_t(off)) << r.problems[0].detail;
  EXPECT_NE(r.problems[0].detail.find(std::to_string(off)), std::string::npos);
  // Without the content key, the block hashes narrow it to the block; then the mounted
  // file is the last resort (here: the same corrupt bytes, so no difference found).
  ManifestFile f = *victim;
  f.key.reset();
  std::string err, how;
  auto got = read_whole(*p, {0, victim->path, victim->size}, &err);
  ASSERT_EQ(err, "");
  f.blocks.clear();
  std::vector<uint8_t> exp(f.size);
  Manifest::expected(*victim, 0, exp.data(), exp.size());
  for (uint64_t b = 0; b < f.size; b += kHashBlock)
    f.blocks.push_back(XXH3_64bits(exp.data() + b, std::min<uint64_t>(kHashBlock, f.size - b)));
  EXPECT_EQ(first_difference(f, got, "", &how), int64_t(off / kHashBlock * kHashBlock)) << how;
  f.blocks.clear();
  EXPECT_EQ(first_difference(f, got, d / "ds", &how), -1) << how;
  // A good copy as the source of truth: the exact byte.
  TempDir good;
  std::filesystem::create_directories(std::filesystem::path(good / victim->path).parent_path());
  std::ofstream(good / victim->path, std::ios::binary).write(reinterpret_cast<const char*>(exp.data()), exp.size());
  EXPECT_EQ(first_difference(f, got, good.path, &how), int64_t(off)) << how;
}

TEST(FilRun, MountedXfsImageEveryPathThenUnmountedThroughTheDriver) {
  if (!have_tool("mkfs.xfs")) GTEST_SKIP() << "mkfs.xfs not installed (apt-get install xfsprogs)";
  if (::geteuid() != 0) GTEST_SKIP() << "loop mounting needs root (the protofile test covers the rest)";
  ImageOptions io;
  io.gen = mixed(80);
  io.mode = "mount";
  std::unique_ptr<DatasetImage> img;
  try {
    img = DatasetImage::create(io);
  } catch (const Error& e) {
    // Only the loop mount itself being refused (no loop devices or mount permission in
    // this container) is a reason to skip: mkfs or data set errors fail the test.
    if (e.code() == Errc::system && std::string(e.what()).rfind("mount -o loop ", 0) == 0) GTEST_SKIP() << e.what();
    FAIL() << e.what();
  }
  ASSERT_TRUE(img->mounted());
  // On XFS the awkward files have the layout they claim.
  for (const auto& f : img->gen().manifest.files) {
    auto fx = extents::resolve(img->data_dir() + "/" + f.path);
    if (f.kind == "fragmented") {
      EXPECT_GT(fx.extents.size(), 4u) << f.path;
    }
    if (f.kind == "sparse") {
      uint64_t written = 0;
      for (auto& e : fx.extents)
        if (!e.has(extents::kExtUnwritten)) written += std::min(e.end(), f.size) - std::min(e.logical, f.size);
      EXPECT_LT(written, f.size) << f.path;
    }
  }
  UnvmeSpec spec;
  spec.opened = target::open("image:" + img->image());
  {
    Session s(img->data_dir(), spec);
    auto names = local_paths();
    names.push_back("unvme");
    expect_all_pass(s, names, run_opts(img->data_dir()));
    expect_all_pass(s, {"unvme"}, run_opts(img->data_dir(), 2));
    EXPECT_EQ(s.extent_source()->name(), "fiemap");
  }
  {
    // The default target: the image behind the loop device, served in this process.
    Session s(img->data_dir(), UnvmeSpec{});
    expect_all_pass(s, {"unvme"}, run_opts(img->data_dir()));
    EXPECT_EQ(s.unvme_target(), "image:" + img->image());
  }
  img->umount();
  {
    UnvmeSpec xs = spec;
    xs.extents = "xfs";
    Session s(img->fs_dir(), xs);
    ASSERT_FALSE(s.local());
    EXPECT_EQ(s.manifest().dump(), img->gen().manifest.dump());
    EXPECT_NE(s.manifest_source().find("XFS decoder"), std::string::npos);
    expect_all_pass(s, {"unvme"}, run_opts(""));
    // Kernel paths need the mount: refused, with the reason.
    expect_error([&] { s.make_path("posix", {}); }, Errc::not_supported,
                 "needs the file system mounted here (" + img->fs_dir() + " is not a directory)");
  }
}

TEST(FilRun, ProtofileImageThroughTheDriver) {
  if (!have_tool("mkfs.xfs")) GTEST_SKIP() << "mkfs.xfs not installed (apt-get install xfsprogs)";
  ImageOptions io;
  io.gen = mixed(50);
  io.mode = "protofile";
  auto img = DatasetImage::create(io);
  ASSERT_FALSE(img->mounted());
  UnvmeSpec spec;
  spec.target = "image:" + img->image();  // opened by the session this time
  spec.extents = "xfs";
  Session s(img->fs_dir(), spec);
  expect_all_pass(s, {"unvme"}, run_opts(""));
  // 4 KiB LBAs: the same image, another namespace format.
  spec.lba_size = 4096;
  Session s4(img->fs_dir(), spec);
  expect_all_pass(s4, {"unvme"}, run_opts("", 2));
  // --poll hybrid on the file-backed software controller (commands of tens of
  // microseconds, the case it is for): every byte verified, and the readers did sleep.
  for (uint32_t threads : {1u, 2u}) {
    auto ro = run_opts("", threads);
    ro.engine.poll = io::PollMode::hybrid;
    expect_all_pass(s, {"unvme"}, ro);
    auto p = s.make_path("unvme", ro.engine);
    EXPECT_NE(p->describe().find("polled (hybrid"), std::string::npos) << p->describe();
    auto r = run_path(*p, s.manifest(), ro);
    EXPECT_TRUE(r.passed());
    EXPECT_GT(r.stats.poll_sleeps, 0u) << "threads " << threads;
  }
}

TEST(FilRun, CorruptedByteInTheImageIsReportedWithFileAndOffset) {
  if (!have_tool("mkfs.xfs")) GTEST_SKIP() << "mkfs.xfs not installed (apt-get install xfsprogs)";
  ImageOptions io;
  io.gen = mixed(40);
  io.mode = ::geteuid() == 0 ? "auto" : "protofile";
  auto img = DatasetImage::create(io);
  img->umount();
  // A file with more than one block of data, and a byte inside its data extent.
  const ManifestFile* victim = nullptr;
  for (const auto& f : img->gen().manifest.files)
    if ((f.kind == "regular" || f.kind == "fragmented") && f.size > 20000) victim = &f;
  ASSERT_NE(victim, nullptr);
  const uint64_t logical = victim->size / 2 + 3;
  uint64_t physical = UINT64_MAX;
  {
    auto fs = extents::xfs::Filesystem::open(img->image());
    auto ino = fs->resolve(img->fs_dir() + "/" + victim->path);
    for (const auto& e : fs->extents(ino))
      if (e.logical <= logical && logical < e.end() && !e.reads_as_zeros()) physical = e.physical + (logical - e.logical);
  }
  ASSERT_NE(physical, UINT64_MAX);
  {
    int fd = ::open(img->image().c_str(), O_RDWR);
    uint8_t b;
    ASSERT_EQ(::pread(fd, &b, 1, off_t(physical)), 1);
    b = uint8_t(~b);
    ASSERT_EQ(::pwrite(fd, &b, 1, off_t(physical)), 1);
    ::close(fd);
  }
  UnvmeSpec spec;
  spec.target = "image:" + img->image();
  spec.extents = "xfs";
  Session s(img->fs_dir(), spec);
  auto ro = run_opts("");
  auto p = s.make_path("unvme", ro.engine);
  auto r = run_path(*p, s.manifest(), ro);
  EXPECT_EQ(r.mismatches, 1u);
  EXPECT_EQ(r.verified_ok, s.manifest().files.size() - 1);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].file, victim->path);
  EXPECT_EQ(r.problems[0].what, "hash mismatch");
  EXPECT_EQ(r.problems[0].offset, int64_t(logical)) << r.problems[0].detail;
}

// A temporary directory that cannot be made: the error names the template asked for
// (TMPDIR/aisio-fil-XXXXXX), not the random name mkdtemp tried last.
TEST(FilImage, MkdtempErrorNamesTheTemplate) {
  if (!have_tool("mkfs.xfs")) GTEST_SKIP() << "mkfs.xfs not installed";
  const char* old = getenv("TMPDIR");
  const std::string saved = old ? old : "";
  ::setenv("TMPDIR", "/nonexistent-aisio-fil-test", 1);
  ImageOptions o;
  expect_error([&] { DatasetImage::create(o); }, Errc::system,
               "mkdtemp /nonexistent-aisio-fil-test/aisio-fil-XXXXXX: No such file or directory");
  if (old) ::setenv("TMPDIR", saved.c_str(), 1);
  else ::unsetenv("TMPDIR");
}

TEST(FilCli, GenRunJsonAndTheNotBuiltPaths) {
  TempDir d;
  int rc = 0;
  std::string out = run_cmd(std::string(AISIO_BIN) + " fil gen " + d / "ds" +
                                " --count 25 --mix --size uniform:1:100K --seed 4 --fanout 8 --json",
                            &rc);
  ASSERT_EQ(rc, 0) << out;
  auto g = nlohmann::json::parse(out);
  EXPECT_EQ(g["files"], 25);
  std::string paths = uring_ok() ? "posix,posix-direct,io_uring,unvme-gpu" : "posix,posix-direct,unvme-gpu";
  out = run_cmd(std::string(AISIO_BIN) + " fil run " + d / "ds" + " --paths " + paths +
                    " --threads 2 --qd 4 --io-size 64K --drop-cache fadvise --json 2>" + d / "err.txt",
                &rc);
  // unvme-gpu was named and cannot run here: the report is complete, the exit status 1.
  ASSERT_EQ(rc, 1) << out;
  std::string err;
  run_shell("cat " + d / "err.txt", &err);
  EXPECT_NE(err.find("--paths named a path that did not run: unvme-gpu (skipped: "), std::string::npos) << err;
  auto j = nlohmann::json::parse(out);
  EXPECT_TRUE(j["passed"].get<bool>());
  EXPECT_EQ(j["dataset"]["files"], 25);
  EXPECT_FALSE(j["machine"]["cpu_model"].get<std::string>().empty());  // report::machine_json, as perf writes it
  EXPECT_FALSE(j["commit"].get<std::string>().empty());
  EXPECT_NE(j["command"].get<std::string>().find("fil run"), std::string::npos);
  for (auto& r : j["results"]) {
    if (r["path"] == "unvme-gpu") {
      EXPECT_FALSE(r["ran"].get<bool>());
      // Not built (no CUDA), or the CUDA build without a usable GPU here.
      const auto why = r["skipped"].get<std::string>();
      EXPECT_TRUE(why.find("not built") != std::string::npos || why.find("CUDA") != std::string::npos) << why;
    } else {
      EXPECT_TRUE(r["passed"].get<bool>()) << r.dump();
      EXPECT_EQ(r["files"], 25);
      EXPECT_GT(r["gb_per_s"].get<double>(), 0);
      EXPECT_GE(r["cpu_s_per_gb"].get<double>(), 0);
    }
  }
  // The group cpu skips what cannot run here (unvme: no controller behind the directory).
  out = run_cmd(std::string(AISIO_BIN) + " fil run " + d / "ds" + " --paths cpu --drop-cache fadvise --json", &rc);
  EXPECT_EQ(rc, 0) << out;
  auto jc = nlohmann::json::parse(out);
  EXPECT_TRUE(jc["passed"].get<bool>());
  for (auto& r : jc["results"])
    if (r["path"] == "unvme") EXPECT_FALSE(r["ran"].get<bool>()) << r.dump();
  // A damaged file: exit status 1 and the file and offset in the report.
  auto m = Manifest::load(d / "ds/manifest.json");
  const ManifestFile* victim = nullptr;
  for (auto& f : m.files)
    if (f.size > 100) victim = &f;
  ASSERT_NE(victim, nullptr);
  {
    int fd = ::open((d / ("ds/" + victim->path)).c_str(), O_RDWR);
    uint8_t b = 0;
    ASSERT_EQ(::pread(fd, &b, 1, 77), 1);
    b ^= 1;
    ASSERT_EQ(::pwrite(fd, &b, 1, 77), 1);
    ::close(fd);
  }
  out = run_cmd(std::string(AISIO_BIN) + " fil run " + d / "ds" + " --paths posix --progress off", &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find(victim->path + ": hash mismatch: first difference at byte offset 77"), std::string::npos)
      << out;
  out = run_cmd(std::string(AISIO_BIN) + " fil run " + d / "ds" + " --paths posix --poll busy 2>&1", &rc);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("--poll 'busy': use spin or hybrid"), std::string::npos) << out;
  out = run_cmd(std::string(AISIO_BIN) + " fil run " + d / "ds" + " --dest gpu", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("not built"), std::string::npos) << out;
  out = run_cmd(std::string(AISIO_BIN) + " fil paths", &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_NE(out.find("cufile"), std::string::npos);
}

// The scenario scripts use: a data set on a new XFS image, a run while mounted, unmount,
// a run through the XFS decoder with the manifest copied out; a failing run fails it.
TEST(FilCli, ScenarioMountedThenUnmounted) {
  if (!have_tool("mkfs.xfs")) GTEST_SKIP() << "mkfs.xfs not installed (apt-get install xfsprogs)";
  if (::geteuid() != 0) GTEST_SKIP() << "loop mounting needs root";
  TempDir d;
  const std::string img = d / "x.img", mnt = d / "mnt";
  int rc = 0;
  std::string out = run_cmd(std::string(AISIO_BIN) + " fil scenario --image " + img + " --mnt " + mnt +
                                " --workdir " + d.path + " --count 20 --size uniform:1:200K --seed 2" +
                                " --mounted '{data} --paths posix --progress off --json > " + d / "m.json'" +
                                " --unmounted '/data --target image:{image} --extents xfs --manifest {manifest}" +
                                " --paths unvme --progress off --json > " + d / "u.json'",
                            &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("(loop mount): "), std::string::npos) << out;
  std::string m, u;
  run_shell("cat " + d / "m.json", &m);
  run_shell("cat " + d / "u.json", &u);
  auto jm = nlohmann::json::parse(m), ju = nlohmann::json::parse(u);
  EXPECT_TRUE(jm["passed"].get<bool>());
  EXPECT_EQ(jm["results"][0]["path"], "posix");
  EXPECT_GE(jm["results"][0]["files"].get<int>(), 20);  // --mix adds its awkward files
  EXPECT_EQ(jm["results"][0]["files"], jm["dataset"]["files"]);
  EXPECT_TRUE(ju["passed"].get<bool>());
  EXPECT_EQ(ju["results"][0]["files"], jm["dataset"]["files"]);
  EXPECT_EQ(ju["unvme"]["extents"].get<std::string>().rfind("XFS on-disk decoder", 0), 0u) << ju["unvme"].dump();
  EXPECT_NE(run_shell("mountpoint -q " + mnt), 0) << "left mounted";
  EXPECT_TRUE(std::filesystem::exists(img)) << "the image named by the caller is the caller's";

  // A run that fails (a path that does not exist) fails the scenario, which names it.
  out = run_cmd(std::string(AISIO_BIN) + " fil scenario --image " + img + " --mnt " + mnt + " --count 3" +
                    " --mounted '{data} --paths no-such-path --progress off'",
                &rc);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("1 of the commands failed"), std::string::npos) << out;
  EXPECT_NE(run_shell("mountpoint -q " + mnt), 0) << "left mounted after a failure";

  // ext4 (where the GPU machines have no mkfs.xfs), with a command before the runs.
  if (have_tool("mkfs.ext4")) {
    out = run_cmd(std::string(AISIO_BIN) + " fil scenario --fs ext4 --image " + img + " --mnt " + mnt +
                      " --count 3 --before 'findmnt -n -o FSTYPE {mnt}' --mounted '{data} --paths posix --progress off'",
                  &rc);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("(loop mount (ext4))"), std::string::npos) << out;
    EXPECT_NE(out.find("\next4\n"), std::string::npos) << out;
  }
  out = run_cmd(std::string(AISIO_BIN) + " fil scenario --fs btrfs --image " + img, &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("file system 'btrfs': use xfs, ext4 or auto"), std::string::npos) << out;
}
