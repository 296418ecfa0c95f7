#include "perf/report.hpp"

#include <fmt/format.h>

namespace aisio::perf {

using nlohmann::json;

namespace {

json dir_json(const DirResult& d, double seconds) {
  double iops = seconds > 0 ? double(d.ios) / seconds : 0;
  double bw = seconds > 0 ? double(d.bytes) / seconds : 0;
  json pct = json::object();
  for (double p : kPercentiles) pct[fmt::format("{:.6f}", p)] = d.lat.percentile(p);
  return json{
      {"io_bytes", d.bytes},
      {"io_kbytes", d.bytes / 1024},
      {"bw_bytes", uint64_t(bw)},
      {"bw", uint64_t(bw / 1024)},  // KiB/s, as fio
      {"bw_mib", bw / (1024.0 * 1024.0)},
      {"iops", iops},
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

json job_json(const ThreadResult& t, const std::string& name) {
  double secs = t.seconds;
  return json{
      {"jobname", name},
      {"groupid", 0},
      {"error", t.errors ? 1 : 0},
      {"errors", t.errors},
      {"first_error", t.first_error},
      {"job_runtime", uint64_t(secs * 1000)},
      {"cpu", t.cpu},
      {"read", dir_json(t.dir[0], secs)},
      {"write", dir_json(t.dir[1], secs)},
      {"usr_cpu", secs > 0 ? 100.0 * t.usr_s / secs : 0.0},
      {"sys_cpu", secs > 0 ? 100.0 * t.sys_s / secs : 0.0},
      {"ctx", t.ctx_switches},
      {"loops", t.loops},
      {"idle_loops", t.idle_loops},
  };
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
  for (auto& t : r.threads) jobs.push_back(job_json(t, fmt::format("thread{}", t.index)));
  j["jobs"] = jobs;
  ThreadResult tot = r.total();
  json total = job_json(tot, "total");
  // The aggregate rate is the sum of the threads' rates (their intervals differ by
  // microseconds); CPU percentages are of one core, summed over the threads.
  double ri = 0, wi = 0, rb = 0, wb = 0;
  for (auto& t : r.threads) {
    if (t.seconds <= 0) continue;
    ri += double(t.dir[0].ios) / t.seconds;
    wi += double(t.dir[1].ios) / t.seconds;
    rb += double(t.dir[0].bytes) / t.seconds;
    wb += double(t.dir[1].bytes) / t.seconds;
  }
  total["read"]["iops"] = ri;
  total["write"]["iops"] = wi;
  total["read"]["bw_bytes"] = uint64_t(rb);
  total["read"]["bw"] = uint64_t(rb / 1024);
  total["read"]["bw_mib"] = rb / (1024.0 * 1024.0);
  total["write"]["bw_bytes"] = uint64_t(wb);
  total["write"]["bw"] = uint64_t(wb / 1024);
  total["write"]["bw_mib"] = wb / (1024.0 * 1024.0);
  total["iops"] = ri + wi;
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
  std::string engine = engine_name(o.engine);
  if (o.hipri) engine += "+hipri";
  if (o.sqpoll) engine += "+sqpoll";
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
  std::string engine = engine_name(o.engine);
  if (o.engine == Engine::io_uring) {
    if (o.hipri) engine += "+hipri";
    if (o.sqpoll) engine += "+sqpoll";
  }
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
  auto row = [&](const ThreadResult& t, const std::string& name, bool total, double iops_override[2]) {
    bool first = true;
    for (int d = 0; d < 2; ++d) {
      const DirResult& dr = t.dir[d];
      bool show = dr.ios > 0 || (d == 0 && t.dir[1].ios == 0);
      if (!show) continue;
      double iops = iops_override ? iops_override[d] : (t.seconds > 0 ? double(dr.ios) / t.seconds : 0);
      double mib = iops * o.bs / (1024.0 * 1024.0);
      std::string cpu = total || t.cpu < 0 ? "-" : std::to_string(t.cpu);
      double usr = t.seconds > 0 ? 100.0 * t.usr_s / t.seconds : 0;
      double sys = t.seconds > 0 ? 100.0 * t.sys_s / t.seconds : 0;
      auto lat = [&](double ns) { return dr.lat.count() > 0 ? human_ns(ns) : "-"; };
      s += table.row({first ? name : "", first ? cpu : "", d ? "write" : "read", human_count(iops),
                      fmt::format("{:.1f}", mib), lat(dr.lat.mean()), lat(double(dr.lat.percentile(50))),
                      lat(double(dr.lat.percentile(99))), lat(double(dr.lat.percentile(99.9))),
                      lat(double(dr.lat.max())), first ? fmt::format("{:.0f}", usr) : "",
                      first ? fmt::format("{:.0f}", sys) : ""});
      first = false;
    }
  };
  if (o.per_thread || r.threads.size() == 1)
    for (auto& t : r.threads) row(t, std::to_string(t.index), false, nullptr);
  if (r.threads.size() > 1 || !o.per_thread) {
    double sums[2] = {0, 0};
    for (auto& t : r.threads)
      for (int d = 0; d < 2; ++d)
        if (t.seconds > 0) sums[d] += double(t.dir[d].ios) / t.seconds;
    row(r.total(), "total", true, sums);
  }
  double secs = r.total().seconds;
  s += fmt::format("total: {} IOPS, {:.1f} MiB/s over {:.2f} s; latency sampled 1 in {}{}\n",
                   human_count(r.total_iops()), r.total_iops() * o.bs / (1024.0 * 1024.0), secs,
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
