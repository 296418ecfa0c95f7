// aisio emu --name NAME [...]: run a software NVMe controller in the foreground until
// SIGINT/SIGTERM; other processes open it with the handle emu:NAME.
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <memory>
#include <string>

#include "common/error.hpp"
#include "emu/server.hpp"
#include "tools/command.hpp"
#include "common/units.hpp"

namespace aisio::tools {
namespace {

struct EmuOptions {
  std::string name;
  std::string ns_size = "1G";
  uint32_t lba = 512;
  unsigned namespaces = 1;
  std::string backing = "ram";
  int mdts = -1;
  int mqes = -1;
  unsigned queues = 0;
  bool sgl = false;
  std::string iops, bandwidth;
  uint32_t latency_us = 0;
  unsigned workers = 1;
  std::string serial;
};

emu::EmuConfig make_config(const EmuOptions& o) {
  emu::EmuConfig cfg;
  if (!o.serial.empty()) cfg.serial = o.serial;
  if (o.mdts >= 0) cfg.mdts = uint8_t(o.mdts);
  if (o.mqes >= 0) cfg.mqes = uint16_t(o.mqes);
  if (o.queues) cfg.max_io_queues = uint16_t(o.queues);
  cfg.sgl = o.sgl;
  cfg.workers = o.workers;
  if (!o.iops.empty()) cfg.device_model.iops = parse_rate(o.iops);
  if (!o.bandwidth.empty()) cfg.device_model.bandwidth = parse_rate(o.bandwidth);
  cfg.device_model.latency_us = o.latency_us;
  emu::NamespaceConfig ns;
  ns.size_bytes = parse_size(o.ns_size);
  ns.lba_size = o.lba;
  if (!emu::parse_backing(o.backing, ns)) throw Error(Errc::invalid_argument, "--backing must be ram, null or file:PATH");
  const std::string path = ns.path;
  cfg.namespaces.clear();
  for (unsigned i = 1; i <= o.namespaces; ++i) {
    // Namespace 1 uses PATH itself, namespace N > 1 uses PATH.N.
    if (ns.backing == emu::Backing::file) ns.path = i == 1 ? path : path + "." + std::to_string(i);
    cfg.namespaces.push_back(ns);
  }
  return cfg;
}

void run(const EmuOptions& o) {
  emu::EmuConfig cfg = make_config(o);
  // Block the signals before any thread starts, so every thread inherits the mask and
  // sigwait below is the only receiver.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  emu::EmuServer server(o.name, cfg);
  server.start();
  const auto& ns = cfg.namespaces.front();
  fmt::print("aisio emu: '{}' listening on {} (handle emu:{}; {} x {} namespace{}, {}-byte LBAs, {} backing)\n",
             o.name, server.socket_path(), o.name, cfg.namespaces.size(), format_size(ns.size_bytes),
             cfg.namespaces.size() > 1 ? "s" : "", ns.lba_size, o.backing);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  server.stop();
  auto st = server.controller().stats();
  fmt::print("aisio emu: stopped ({}); {} I/O commands, {} read, {} written\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
             st.io_commands, format_size(st.bytes_read), format_size(st.bytes_written));
}

CommandRegistrar reg(5, [](CLI::App& app) {
  auto o = std::make_shared<EmuOptions>();
  auto* cmd = app.add_subcommand("emu", "Run a software NVMe controller (attach with handle emu:NAME)");
  cmd->add_option("--name", o->name, "Emulator name: socket ${AISIO_RUN_DIR:-/tmp/aisio}/emu-NAME.sock")->required();
  cmd->add_option("--ns-size", o->ns_size, "Namespace size (e.g. 1G, 512M, 4T)")->capture_default_str();
  cmd->add_option("--lba", o->lba, "LBA size")->check(CLI::IsMember({512, 4096}))->capture_default_str();
  cmd->add_option("--namespaces", o->namespaces, "Number of namespaces")->check(CLI::Range(1, 1024))->capture_default_str();
  cmd->add_option("--backing", o->backing, "ram | null | file:PATH (namespace N>1 uses PATH.N)")->capture_default_str();
  cmd->add_option("--mdts", o->mdts, "MDTS: max transfer 2^N x 4 KiB, 0 = unlimited (default 5)")->check(CLI::Range(0, 20));
  cmd->add_option("--mqes", o->mqes, "CAP.MQES, 0-based: I/O queues hold up to N+1 entries (default 1023)")
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--queues", o->queues, "I/O queue pairs offered (default 64)")->check(CLI::Range(1, 4096));
  cmd->add_flag("--sgl", o->sgl, "Support SGLs for NVM I/O commands");
  cmd->add_option("--iops", o->iops, "Device model: command rate cap (e.g. 3.86M)");
  cmd->add_option("--bandwidth", o->bandwidth, "Device model: byte rate cap, decimal units (e.g. 14.5G = 14.5 GB/s)");
  cmd->add_option("--latency-us", o->latency_us, "Device model: fixed latency per I/O command");
  cmd->add_option("--workers", o->workers, "I/O worker threads")->check(CLI::Range(1, 64))->capture_default_str();
  cmd->add_option("--serial", o->serial, "Serial number (Identify Controller SN)");
  cmd->callback([o] { run(*o); });
});

}  // namespace
}  // namespace aisio::tools
