#include "perf/report.hpp"

#include <fmt/format.h>

#include <span>

#include "report/table.hpp"

namespace aisio::perf {

using nlohmann::json;

namespace {

// The rate of direction `dir` summed over `threads`, each over its own interval: one
// thread's own rate, or for the total the sum of the threads' rates (their intervals
// differ by microseconds).
struct Rate {
  double iops = 0, bytes_per_s = 0;
  Rate(std::span<const ThreadResult> threads, int dir) {
    for (const auto& t : threads) {
      if (t.seconds <= 0) continue;
      iops += double(t.dir[dir].ios) / t.seconds;
      bytes_per_s += double(t.dir[dir].bytes) / t.seconds;
    }
  }
};

json dir_json(const DirResult& d, double seconds, const Rate& rate) {
  const double bw = rate.bytes_per_s;
  json pct = json::object();
  for (double p : kPercentiles) pct[fmt::format("{:.6f}", p)] = d.lat.percentile(p);
  return json{
      {"io_bytes", d.bytes},
      {"io_kbytes", d.bytes / 1024},
      {"bw_bytes", uint64_t(bw)},
      {"bw", uint64_t(bw / 1024)},  // KiB/s, as fio
      {"bw_mib", bw / (1024.0 * 1024.0)},
      {"iops", rate.iops},
      {"runtime", uint64_t(seconds * 1000)},  // ms
      {"total_ios", d.ios},
      {"lat_ns",
       {{"min", d.lat.min()},
        {"max", d.lat.max()},
        {"mean", d.lat.mean()},
        {"stddev", d.lat.stddev()},
        {"N", d.lat.count()},
        {"percentile", pct}}},
  };
}

// rates_of: the threads whose rates t reports (t itself, or all of them for the total).
json job_json(const ThreadResult& t, const std::string& name, std::span<const ThreadResult> rates_of) {
  double secs = t.seconds;
  return json{
      {"jobname", name},
      {"groupid", 0},
      {"error", t.errors ? 1 : 0},
      {"errors", t.errors},
      {"first_error", t.first_error},
      {"job_runtime", uint64_t(secs * 1000)},
      {"cpu", t.cpu},
      {"read", dir_json(t.dir[0], secs, Rate(rates_of, 0))},
      {"write", dir_json(t.dir[1], secs, Rate(rates_of, 1))},
      {"usr_cpu", secs > 0 ? 100.0 * t.usr_s / secs : 0.0},
      {"sys_cpu", secs > 0 ? 100.0 * t.sys_s / secs : 0.0},
      {"ctx", t.ctx_switches},
      {"loops", t.loops},
      {"idle_loops", t.idle_loops},
  };
}

// "io_uring+hipri+sqpoll": the engine and its io_uring modes (valid options have them
// only with io_uring).
std::string engine_label(const PerfOptions& o) {
  return fmt::format("{}{}{}", engine_name(o.engine), o.hipri ? "+hipri" : "", o.sqpoll ? "+sqpoll" : "");
}

}  // namespace

json to_json(const RunResult& r) {
  const PerfOptions& o = r.opts;
  json j;
  j["aisio_perf"] = 1;
  j["timestamp"] = r.record.timestamp;
  j["time"] = r.record.started;
  j["command_line"] = o.command_line;
  j["commit"] = r.record.commit;
  j["machine"] = report::machine_json<json>(r.record.machine);
  json g = {
      {"engine", engine_name(o.engine)},
      {"rw", rw_name(o.rw)},
      {"rwmixread", o.rwmix},
      {"bs", o.bs},
      {"iodepth", o.qd},
      {"numjobs", o.threads},
      {"runtime", o.runtime_s},
      {"ramp_time", o.ramp_s},
      {"ios", o.ios},
      {"size", o.size},
      {"offset", o.offset},
      {"seed", o.seed},
      {"nsid", o.nsid},
      {"mem", mem_name(o.mem)},
      {"lat", o.lat},
      {"lat_sample", o.lat_sample},
      {"hipri", o.hipri},
      {"sqpoll", o.sqpoll},
      {"direct", o.direct},
      {"pin", o.pin},
      {"targets", o.targets},
  };
  if (o.emu.devices)
    g["emu"] = {{"devices", o.emu.devices},   {"ns_size", o.emu.ns_bytes},   {"lba", o.emu.lba_size},
                {"iops", o.emu.iops},         {"bandwidth", o.emu.bandwidth}, {"latency_us", o.emu.latency_us},
                {"workers", o.emu.workers},   {"backing", o.emu.backing}};
  j["global options"] = g;
  json devs = json::array();
  for (auto& d : r.devices)
    devs.push_back({{"name", d.name}, {"model", d.model}, {"lba_size", d.lba_size}, {"capacity", d.capacity}});
  j["devices"] = devs;
  json jobs = json::array();
  for (auto& t : r.threads) jobs.push_back(job_json(t, fmt::format("thread{}", t.index), {&t, 1}));
  j["jobs"] = jobs;
  // CPU percentages are of one core, summed over the threads.
  json total = job_json(r.total(), "total", r.threads);
  total["iops"] = r.total_iops();
  total["cpu"] = nullptr;
  j["total"] = total;
  j["wall_s"] = r.wall_s;
  j["notes"] = r.notes;
  return j;
}

std::string to_terse(const RunResult& r) {
  const PerfOptions& o = r.opts;
  ThreadResult t = r.total();
  LatencyHistogram lat = t.dir[0].lat;
  lat.merge(t.dir[1].lat);
  const std::string engine = engine_label(o);
  double iops = r.total_iops();
  double secs = t.seconds;
  return fmt::format(
      "aisio-perf engine={} rw={} bs={} qd={} threads={} devices={} iops={:.1f} bw_mib={:.2f} lat_mean_ns={:.0f} "
      "lat_p50_ns={} lat_p99_ns={} lat_p999_ns={} lat_max_ns={} usr_cpu={:.1f} sys_cpu={:.1f} seconds={:.3f} "
      "errors={}\n",
      engine, rw_name(o.rw), o.bs, o.qd, o.threads, r.devices.size(), iops, iops * o.bs / (1024.0 * 1024.0),
      lat.mean(), lat.percentile(50), lat.percentile(99), lat.percentile(99.9), lat.max(),
      secs > 0 ? 100 * t.usr_s / secs : 0.0, secs > 0 ? 100 * t.sys_s / secs : 0.0, secs, t.errors);
}

std::string to_text(const RunResult& r) {
  const PerfOptions& o = r.opts;
  std::string s;
  const std::string engine = engine_label(o);
  s += fmt::format("aisio perf: {} {}{} bs={} qd={} threads={} devices={} {}{}\n", engine, rw_name(o.rw),
                   rw_mixed(o.rw) ? fmt::format(" rwmix={}", o.rwmix) : "", o.bs, o.qd, o.threads,
                   r.devices.size(),
                   o.ios ? fmt::format("ios={}/thread", o.ios) : fmt::format("runtime={}s", o.runtime_s),
                   o.ramp_s > 0 ? fmt::format(" ramp={}s", o.ramp_s) : "");
  for (auto& d : r.devices)
    s += fmt::format("  device {}: {}, {}-byte blocks, {:.1f} GiB\n", d.name, d.model, d.lba_size,
                     double(d.capacity) / (1ull << 30));
  for (auto& n : r.notes) s += "  note: " + n + "\n";
  const report::Table table({{"thread", 7, true},
                              {"cpu", 4},
                              {"dir", 5, true},
                              {"IOPS", 9},
                              {"MiB/s", 10},
                              {"lat mean", 9},
                              {"p50", 9},
                              {"p99", 9},
                              {"p99.9", 9},
                              {"max", 9},
                              {"usr%", 6},
                              {"sys%", 6}});
  s += table.header();
  auto row = [&](const ThreadResult& t, const std::string& name, bool total, std::span<const ThreadResult> rates_of) {
    bool first = true;
    for (int d = 0; d < 2; ++d) {
      const DirResult& dr = t.dir[d];
      bool show = dr.ios > 0 || (d == 0 && t.dir[1].ios == 0);
      if (!show) continue;
      double iops = Rate(rates_of, d).iops;
      double mib = iops * o.bs / (1024.0 * 1024.0);
      std::string cpu = total || t.cpu < 0 ? "-" : std::to_string(t.cpu);
      double usr = t.seconds > 0 ? 100.0 * t.usr_s / t.seconds : 0;
      double sys = t.seconds > 0 ? 100.0 * t.sys_s / t.seconds : 0;
      auto lat = [&](double ns) { return dr.lat.count() > 0 ? report::human_ns(ns) : "-"; };
      s += table.row({first ? name : "", first ? cpu : "", d ? "write" : "read", report::human_count(iops),
                      fmt::format("{:.1f}", mib), lat(dr.lat.mean()), lat(double(dr.lat.percentile(50))),
                      lat(double(dr.lat.percentile(99))), lat(double(dr.lat.percentile(99.9))),
                      lat(double(dr.lat.max())), first ? fmt::format("{:.0f}", usr) : "",
                      first ? fmt::format("{:.0f}", sys) : ""});
      first = false;
    }
  };
  if (o.per_thread || r.threads.size() == 1)
    for (auto& t : r.threads) row(t, std::to_string(t.index), false, {&t, 1});
  if (r.threads.size() > 1 || !o.per_thread) row(r.total(), "total", true, r.threads);
  double secs = r.total().seconds;
  s += fmt::format("total: {} IOPS, {:.1f} MiB/s over {:.2f} s; latency sampled 1 in {}{}\n",
                   report::human_count(r.total_iops()), r.total_iops() * o.bs / (1024.0 * 1024.0), secs,
                   o.lat ? std::to_string(o.lat_sample) : "-", o.lat ? "" : " (--lat off)");
  if (r.errors()) {
    for (auto& t : r.threads)
      if (t.errors)
        s += fmt::format("thread {}: {} error{}; first: {}\n", t.index, t.errors, t.errors > 1 ? "s" : "",
                         t.first_error);
  }
  return s;
}

}  // namespace aisio::perf
