// homid: the HOMI control-plane daemon. It owns the controllers (their admin queues
// never leave it), listens on a UNIX SOCK_SEQPACKET socket and, for the clients its
// policy admits (SO_PEERCRED), creates and deletes I/O queue pairs, maps client memory
// for DMA, resolves file extents and reports statistics. Protocol: protocol.md.
//
//   homi::Daemon d(homi::load_config("/etc/homid.toml"));
//   d.start();                 // controllers up, socket listening, one service thread
//   ...  d.reload(homi::load_config(path).policy);   // on SIGHUP
//   d.stop();                  // clients dropped (their queues deleted), controllers shut down
//
// One service thread does everything (admin commands are synchronous), so requests are
// serialised; a client that dies has its queues deleted (Delete SQ, Delete CQ) before
// its memory is unmapped from the device.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "homi/config.hpp"

namespace aisio::homi {

class Daemon {
 public:
  explicit Daemon(DaemonConfig cfg);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Opens every controller, binds the socket (refusing when another homid answers on
  // it) and starts the service thread. Throws Error.
  void start();
  void stop();  // idempotent
  // Applies a new policy (limits, rules, log level) from the service thread; clients the
  // new rules no longer admit are disconnected and their queues reclaimed.
  void reload(Policy p);

  const std::string& socket_path() const;
  uint64_t instance() const;

  struct Snapshot {
    size_t clients = 0;
    size_t queues = 0;
    uint64_t reclaimed_queues = 0;
    uint64_t accepted = 0;
    uint64_t extent_cache_hits = 0;    // resolve_extents answered without FIEMAP
    uint64_t extent_cache_misses = 0;  // ... that ran FIEMAP (new or changed file)
    uint64_t policies_applied = 0;  // reload()s the service thread has applied: wait on this
  };
  Snapshot snapshot() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aisio::homi
