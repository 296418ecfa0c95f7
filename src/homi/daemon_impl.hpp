// homid's state, private to src/homi. Its members are defined by responsibility:
//   daemon.cpp    life cycle: start/stop/reload, the service thread's poll loop,
//                 client accept/drop and the reclaim of what a client held
//   requests.cpp  one handler per request type, and the serve/reply path around them
//   policy.cpp    what a rule admits (clients, controllers, queue memory) and the budgets
#pragma once
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "common/error.hpp"
#include "extents/cache.hpp"
#include "homi/config.hpp"
#include "homi/daemon.hpp"
#include "homi/managed.hpp"
#include "homi/sriov_service.hpp"
#include "homi/transport.hpp"
#include "homi/ublk/exports.hpp"
#include "homi/wire.hpp"

namespace aisio::homi {

struct Daemon::Impl {
  using Clock = std::chrono::steady_clock;

  // A queue pair granted to a client (its memory: the client's, or external).
  struct Queue {
    uint32_t ctrl = 0;
    uint16_t qid = 0;
    uint32_t depth = 0, nsid = 0, flags = 0;
    uint64_t sq_bus = 0, cq_bus = 0;
    Clock::time_point created;
    uint32_t gpu = 0;  // with wire::kAllocGpu in flags: the GPU it is accounted to
  };

  // Client memory mapped for DMA on one controller.
  struct Region {
    uint64_t id = 0;
    uint32_t ctrl = 0;
    DeviceRegion dev;
  };

  struct Client {
    Fd fd;
    uint64_t id = 0;
    ucred cred{};
    std::vector<uint32_t> groups;
    std::string name;
    std::optional<AccessRule> rule;
    bool hello = false;
    std::vector<Queue> queues;
    std::list<Region> regions;
    uint64_t dma_bytes = 0;
    uint64_t next_region = 1;
    uint64_t requests = 0, errors = 0;
    int protocol_errors = 0;
    Clock::time_point connected = Clock::now();

    std::string who() const {
      return fmt::format("client {} (pid {}, uid {}{}{})", id, cred.pid, cred.uid, name.empty() ? "" : ", ",
                         name);
    }
  };

  // A request refused with a reason for the client.
  [[noreturn]] static void refuse(Errc code, const std::string& text) { throw Error(code, text); }

  explicit Impl(DaemonConfig c);
  ~Impl() { stop(); }

  // Life cycle (daemon.cpp).
  void start();
  void stop();
  void run();
  void accept_one();
  void drop(Client& c, const char* why);
  void delete_queue(Client& c, const Queue& q);

  // Requests (requests.cpp).
  bool serve(Client& c);  // false: drop the client
  void reply(Client& c, uint32_t seq, const wire::Body& body, int fd = -1);
  void handle(Client& c, const wire::Message& m, std::vector<Fd>& fds);
  wire::Body on_hello(Client& c, const wire::Hello& h);
  wire::Body on_list(Client& c);
  wire::Body on_identify(Client& c, const wire::Identify& r);
  void on_alloc(Client& c, uint32_t seq, const wire::AllocQueue& r);  // replies itself: the doorbell fd
  wire::Body on_release(Client& c, const wire::ReleaseQueue& r);
  wire::Body on_register(Client& c, const wire::RegisterDma& r, Fd fd);
  wire::Body on_unregister(Client& c, const wire::UnregisterDma& r);
  wire::Body on_resolve(Client& c, const wire::ResolveExtents& r, Fd fd);
  wire::Body on_stats(Client& c, const wire::Stats& r);
  wire::Body on_list_functions(Client& c);
  void on_grant_function(Client& c, uint32_t seq, const wire::GrantFunction& r);  // replies itself: the BAR fd
  wire::Body on_release_function(Client& c, const wire::ReleaseFunction& r);

  // Policy (policy.cpp). The checks throw the refusal for the client.
  void apply_policy(Policy p);
  const AccessRule& admit(const Client& c) const;
  ManagedController& controller_for(const Client& c, uint32_t index);
  uint32_t max_queues(const Client& c) const;
  uint64_t max_dma(const Client& c) const;
  void check_queue_depth(const nvme::Controller& ctrl, uint32_t depth) const;
  void check_queue_budget(const Client& c) const;
  void check_queue_memory(const Client& c, const ManagedController& m, const wire::AllocQueue& r) const;
  void check_dma_budget(const Client& c, uint64_t length) const;
  uint16_t in_use(uint32_t ctrl) const;
  size_t total_queues() const;

  DaemonConfig cfg;
  Policy policy;  // service thread (and under mu)
  // FIEMAP results by (dev, ino) while the file's stamps hold: a client paging through a
  // large file's extents, or reading the same data set again, does not map it again.
  extents::ExtentCache extent_cache{{.fiemap = {.sync = true}}};
  uint64_t instance = 0;
  Clock::time_point started_at = Clock::now();
  std::vector<std::unique_ptr<ManagedController>> ctrls;
  std::unique_ptr<SriovService> sriov;  // sriov-pf controllers (indices after ctrls)
  std::unique_ptr<ublk::Exports> ublk;  // namespaces exported to the kernel; before ctrls go
  Fd listen_fd, wake_fd;
  std::thread thread;
  bool running = false;
  std::atomic<bool> stopping{false};

  mutable std::mutex mu;  // clients, counters, pending policy: held by the service thread while it works
  std::list<Client> clients;
  std::optional<Policy> pending;
  uint64_t next_client = 1;
  uint64_t accepted = 0;
  uint64_t reclaimed = 0;
  uint64_t policies_applied = 0;
};

}  // namespace aisio::homi
