#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include "common/error.hpp"
#include "common/expect_error.hpp"
#include "common/units.hpp"
#include "perf/options.hpp"

using aisio::test::expect_error;

namespace aisio::perf {
namespace {

PerfOptions parse(std::vector<std::string> args) {
  CLI::App app;
  PerfOptions o;
  add_run_options(app, o);
  std::reverse(args.begin(), args.end());  // CLI11 takes them reversed
  app.parse(args);
  return o;
}

TEST(PerfOptions, Defaults) {
  PerfOptions o = parse({"embedded"});
  EXPECT_EQ(o.targets, std::vector<std::string>{"embedded"});
  EXPECT_EQ(o.engine, Engine::unvme);
  EXPECT_EQ(o.rw, RwMode::randread);
  EXPECT_EQ(o.bs, 4096u);
  EXPECT_EQ(o.qd, 32u);
  EXPECT_EQ(o.threads, 1u);
  EXPECT_TRUE(o.lat);
  EXPECT_NO_THROW(o.validate());
}

TEST(PerfOptions, FioLikeSpellings) {
  PerfOptions o = parse({"emu:a", "emu:b", "--engine", "unvme", "--rw", "randrw", "--rwmix", "70", "--bs", "512",
                         "--qd", "128", "--threads", "3", "--runtime", "10s", "--ramp", "500ms", "--size", "1G",
                         "--offset", "4k", "--seed", "42", "--mem", "host", "--lat", "off", "--nsid", "2",
                         "--cpus", "0-1,3", "--json"});
  EXPECT_EQ(o.targets, (std::vector<std::string>{"emu:a", "emu:b"}));
  EXPECT_EQ(o.rw, RwMode::randrw);
  EXPECT_EQ(o.rwmix, 70u);
  EXPECT_EQ(o.bs, 512u);
  EXPECT_EQ(o.qd, 128u);
  EXPECT_EQ(o.threads, 3u);
  EXPECT_DOUBLE_EQ(o.runtime_s, 10);
  EXPECT_DOUBLE_EQ(o.ramp_s, 0.5);
  EXPECT_EQ(o.size, 1ull << 30);
  EXPECT_EQ(o.offset, 4096u);
  EXPECT_EQ(o.seed, 42u);
  EXPECT_FALSE(o.lat);
  EXPECT_EQ(o.nsid, 2u);
  EXPECT_EQ(o.cpus, (std::vector<int>{0, 1, 3}));
  EXPECT_TRUE(o.json);
  EXPECT_NO_THROW(o.validate());

  PerfOptions k = parse({"/dev/nvme0n1", "--engine", "io_uring", "--hipri", "--sqpoll", "--iodepth", "8",
                         "--numjobs", "2", "--ios", "1000"});
  EXPECT_EQ(k.engine, Engine::io_uring);
  EXPECT_TRUE(k.hipri);
  EXPECT_TRUE(k.sqpoll);
  EXPECT_EQ(k.qd, 8u);
  EXPECT_EQ(k.threads, 2u);
  EXPECT_EQ(k.ios, 1000u);
  EXPECT_NO_THROW(k.validate());
}

TEST(PerfOptions, EmuModel) {
  PerfOptions o = parse({"--emu-devices", "16", "--emu-iops", "3.86M", "--emu-bw", "14.5G", "--emu-latency-us", "0",
                         "--emu-workers", "2", "--emu-ns-size", "2T", "--emu-lba", "4096"});
  EXPECT_TRUE(o.targets.empty());
  EXPECT_EQ(o.emu.devices, 16u);
  EXPECT_DOUBLE_EQ(o.emu.iops, 3.86e6);
  EXPECT_DOUBLE_EQ(o.emu.bandwidth, 14.5e9);
  EXPECT_EQ(o.emu.latency_us, 0u);
  EXPECT_EQ(o.emu.workers, 2u);
  EXPECT_EQ(o.emu.ns_bytes, 2ull << 40);
  EXPECT_EQ(o.emu.lba_size, 4096u);
  EXPECT_NO_THROW(o.validate());
  // --emu-bandwidth is the long spelling, as `aisio emu --bandwidth`.
  EXPECT_DOUBLE_EQ(parse({"--emu-devices", "1", "--emu-bandwidth", "1GB/s"}).emu.bandwidth, 1e9);
}

TEST(PerfOptions, Units) {
  // The option values' units (common/units.hpp), as --bs, --size and --emu-iops read them.
  EXPECT_EQ(parse_size("512"), 512u);
  EXPECT_EQ(parse_size("4k"), 4096u);
  EXPECT_EQ(parse_size("4KiB"), 4096u);
  EXPECT_EQ(parse_size("1M"), 1u << 20);
  EXPECT_EQ(parse_size("1GB"), 1000000000u);
  EXPECT_DOUBLE_EQ(parse_rate("3.86M"), 3.86e6);
  EXPECT_DOUBLE_EQ(parse_rate("14.5G"), 14.5e9);
  EXPECT_DOUBLE_EQ(parse_duration("2"), 2);
  EXPECT_DOUBLE_EQ(parse_duration("250ms"), 0.25);
  EXPECT_DOUBLE_EQ(parse_duration("1m"), 60);
  expect_error([] { parse_size("4q"); }, Errc::invalid_argument, "invalid size '4q'");
  expect_error([] { parse_duration("fast"); }, Errc::invalid_argument, "duration 'fast' is not a number");
  expect_error([] { parse_cpu_list("3-1"); }, Errc::invalid_argument, "bad CPU range in '3-1'");
  expect_error([] { parse_cpu_list("a"); }, Errc::invalid_argument, "bad CPU list 'a' (e.g. 0-3,6)");
}

TEST(PerfOptions, Rejects) {
  // Each refusal with its own reason: a bare "it threw" would pass for the wrong one.
  auto rejects = [](std::vector<std::string> args, Errc code, const std::string& why) {
    std::string line;
    for (auto& a : args) line += a + " ";
    SCOPED_TRACE(line);
    expect_error([&] { parse(args).validate(); }, code, why);
  };
  const Errc inval = Errc::invalid_argument;
  rejects({}, inval, "no target: give controller handles");
  rejects({"embedded", "--bs", "1000"}, inval, "--bs 1000 must be a positive multiple of 512");
  rejects({"embedded", "--qd", "0"}, inval, "--qd must be at least 1");
  rejects({"embedded", "--threads", "0"}, inval, "--threads must be at least 1");
  rejects({"embedded", "--rwmix", "101"}, inval, "--rwmix must be between 0 and 100");
  rejects({"embedded", "--engine", "spdk"}, inval, "unknown engine 'spdk' (have: unvme, io_uring, psync)");
  rejects({"embedded", "--rw", "trim"}, inval, "unknown --rw 'trim'");
  rejects({"embedded", "--hipri"}, inval, "--hipri and --sqpoll apply to --engine io_uring");
  rejects({"f", "--engine", "io_uring", "--hipri", "--direct", "0"}, inval, "--hipri (IOPOLL) needs --direct 1");
  rejects({"embedded", "--mem", "gpu"}, Errc::not_supported, "--mem gpu needs the CUDA build of aisio perf");
  rejects({"embedded", "--runtime", "0"}, inval, "give --runtime > 0 or --ios N");
  rejects({"f", "--engine", "psync", "--emu-devices", "2"}, inval, "--emu-devices needs --engine unvme");
  rejects({"embedded", "--lat", "maybe"}, inval, "--lat takes on or off");
  EXPECT_NO_THROW(parse({"embedded", "--runtime", "0", "--ios", "10"}).validate());
}

}  // namespace
}  // namespace aisio::perf
