// homid --config FILE [--log-level LEVEL] [--check]
//
// Runs in the foreground until SIGTERM or SIGINT; SIGHUP reloads the policy part of the
// configuration. Logs go to stderr (journald under systemd). With NOTIFY_SOCKET set
// (systemd Type=notify) it reports READY=1 once the socket listens, RELOADING=1 /
// READY=1 around reloads and STOPPING=1.
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <cstring>

#include "common/error.hpp"
#include "homi/config.hpp"
#include "homi/daemon.hpp"
#include "homi/log.hpp"
#include "homi/ublk/exports.hpp"

namespace {

void sd_notify(const char* state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) return;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  size_t n = std::strlen(path);
  if (n >= sizeof a.sun_path) return;
  std::memcpy(a.sun_path, path, n);
  if (a.sun_path[0] == '@') a.sun_path[0] = 0;  // abstract namespace
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + n);
  if (sendto(fd, state, std::strlen(state), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&a), len) < 0) {
    aisio::homi::log(aisio::homi::Level::debug, "sd_notify: {}", std::strerror(errno));
  }
  close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace aisio::homi;
  CLI::App app{"homid: the HOMI control-plane daemon (NVMe queues, DMA memory and extents for clients)"};
  std::string config_path = "/etc/homid/homid.toml";
  std::string level;
  bool check = false;
  app.add_option("-c,--config", config_path, "TOML configuration file")->capture_default_str();
  app.add_option("--log-level", level, "error, warn, info or debug (overrides [daemon].log_level)");
  app.add_flag("--check", check, "validate the configuration and exit");
  CLI11_PARSE(app, argc, argv);

  try {
    DaemonConfig cfg = load_config(config_path);
    if (!level.empty()) cfg.policy.log_level = level;
    set_log_level(parse_level(cfg.policy.log_level));
    if (check) {
      std::string ublk_line = aisio::homi::ublk::preflight(cfg.controllers);  // throws: ublk_drv missing, id taken
      if (!ublk_line.empty()) fmt::print("{}\n", ublk_line);
      fmt::print("{}: OK ({} controller(s), {} sriov-pf, {} rule(s), socket {})\n", config_path, cfg.controllers.size(),
                 cfg.sriov_pfs.size(), cfg.policy.rules.size(), cfg.socket);
      return 0;
    }
    // Block the signals before any thread starts: every thread inherits the mask and
    // sigwait below is their only receiver.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);

    Daemon d(cfg);
    d.start();
    sd_notify("READY=1");
    for (;;) {
      int sig = 0;
      sigwait(&set, &sig);
      if (sig == SIGHUP) {
        sd_notify("RELOADING=1");
        try {
          DaemonConfig fresh = load_config(config_path);
          if (!level.empty()) fresh.policy.log_level = level;
          if (fresh.socket != cfg.socket) log(Level::warn, "reload: the socket path changes only on restart");
          if (fresh.controllers.size() != cfg.controllers.size())
            log(Level::warn, "reload: controller changes take effect only on restart");
          d.reload(fresh.policy);
        } catch (const aisio::Error& e) {
          log(Level::error, "reload failed, keeping the current policy: {}", e.what());
        }
        sd_notify("READY=1");
        continue;
      }
      log(Level::info, "{}: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
      sd_notify("STOPPING=1");
      break;
    }
    d.stop();
    return 0;
  } catch (const std::exception& e) {
    log(Level::error, "{}", e.what());
    return 1;
  }
}
