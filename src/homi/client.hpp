// homic: the client library of homid.
//
// The one-call form, for tools that run "in-process or through homid" (aisio perf
// --via homid, the file benchmark):
//
//   auto s = aisio::homic::open("/run/homid/homid.sock", "soft0");   // or "0" (index)
//   const auto& info = s->info();               // namespaces, MDTS, CAP.MQES, page size
//   auto qp  = s->create_queue_pair({.depth = 128});   // a ready nvme::QueuePair
//   auto buf = s->dma()->alloc(1 << 20);        // memory the controller can reach
//   qp->read(1, 0, 256, buf);                   // the same driver code as in-process
//
// The queue pair's memory comes from s->dma(): a DmaHeap whose chunks are memfds
// registered with homid (register_dma). homid issues Create I/O CQ/SQ on its admin
// queue at those bus addresses and hands back the queue id and the doorbells to map;
// destroying the QueuePair asks homid to delete the queues (Delete SQ, Delete CQ)
// before its memory goes back to the heap. If the process dies, homid does the same.
//
// A daemon that stops or restarts closes the connection: every later request throws
// homic::Disconnected, QueueOwner::fatal() turns true (outstanding commands end with
// HostStatus::controller_fatal) and a new Client / Session must be opened.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "homi/transport.hpp"
#include "homi/wire.hpp"
#include "memory/dma.hpp"
#include "nvme/queue_pair.hpp"

namespace aisio::homic {

namespace wire = homi::wire;

// $HOMID_SOCKET when set, else /run/homid/homid.sock.
std::string default_socket();

// The daemon closed the connection (stopped, restarted or crashed). Connect again.
class Disconnected : public Error {
 public:
  explicit Disconnected(const std::string& what) : Error(Errc::system, what) {}
};

struct ConnectOptions {
  std::string name;                   // shown by `aisio homi clients` (default: /proc/self/comm)
  std::chrono::milliseconds wait{0};  // retry while the socket is missing or refuses (daemon starting)
};

struct Reply {
  wire::Message msg;
  homi::Fd fd;
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  // Connects and says hello. Throws Error: system (no daemon; the message names the
  // socket), or the daemon's refusal (policy, version) with its code and text.
  static std::shared_ptr<Client> connect(const std::string& socket = default_socket(), const ConnectOptions& opt = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const wire::HelloOk& hello() const { return hello_; }
  const std::string& socket_path() const { return path_; }
  // False once the daemon has closed the connection (a non-blocking check).
  bool connected() const;

  std::vector<wire::ControllerInfo> controllers();
  // By name, or by index written as a number. Throws invalid_argument naming the choices.
  wire::ControllerInfo controller(const std::string& name_or_index);
  std::vector<uint8_t> identify(uint32_t ctrl, uint8_t cns, uint32_t nsid = 0);

  struct QueueGrant {
    wire::AllocQueueOk ok;
    homi::Fd fd;  // map ok.map_length bytes at ok.map_offset
  };
  QueueGrant alloc_queue(const wire::AllocQueue& req);
  void release_queue(uint32_t ctrl, uint16_t qid);
  wire::RegisterDmaOk register_dma(uint32_t ctrl, int memfd, uint64_t len);
  void unregister_dma(uint32_t ctrl, uint64_t region);
  // One page of a file's extents (see wire::ResolveExtents), or all of them.
  wire::ResolveExtentsOk resolve_extents(int fd, uint64_t first = 0, uint32_t max = 0, bool sync = true);
  wire::ResolveExtentsOk resolve_all_extents(int fd, bool sync = true);
  wire::StatsOk stats(bool all = true);

  // Any message (tests use it). An error reply becomes Error(errc, "homid: text");
  // a closed connection becomes Disconnected.
  Reply request(const wire::Body& body, int fd = -1);
  // Sends raw bytes as one packet and returns the reply (tests of malformed input).
  Reply request_raw(const std::vector<uint8_t>& bytes, int fd = -1);

 private:
  Client() = default;
  Reply exchange(const std::vector<uint8_t>& bytes, uint32_t seq, int fd);
  template <class T>
  T call(const wire::Body& body, int fd = -1);

  homi::Fd fd_;
  std::string path_;
  wire::HelloOk hello_;
  std::mutex mu_;
  uint32_t seq_ = 0;
  mutable std::atomic<bool> lost_{false};
};

struct SessionOptions {
  size_t dma_grow_bytes = 8u << 20;  // registered memfd size step of the heap
};

// A queue pair homid granted: the doorbells to ring; destroying it deletes the queues.
// Session::create_queue_at hands it out for queues whose memory the client placed
// itself (GPU memory); create_queue_pair's QueuePair holds one of its own.
class ExternalQueue {
 public:
  ~ExternalQueue();
  uint16_t qid() const { return qid_; }
  volatile uint32_t* sq_doorbell() const { return sq_; }
  volatile uint32_t* cq_doorbell() const { return cq_; }
  uint64_t sq_doorbell_offset() const { return sq_off_; }  // within the mapping
  void* mapping() const { return map_; }
  int gpu() const { return gpu_; }  // the GPU homid accounted it to (-1: none)

 private:
  friend class Session;
  ExternalQueue() = default;
  int gpu_ = -1;
  std::shared_ptr<Client> client_;
  uint32_t ctrl_ = 0;
  uint16_t qid_ = 0;
  void* map_ = nullptr;
  size_t map_len_ = 0;
  uint64_t sq_off_ = 0;
  volatile uint32_t* sq_ = nullptr;
  volatile uint32_t* cq_ = nullptr;
};

// One controller through homid: everything a benchmark needs of it.
class Session : public std::enable_shared_from_this<Session> {
 public:
  static std::shared_ptr<Session> open(std::shared_ptr<Client> client, const std::string& controller,
                                       const SessionOptions& opt = {});

  const wire::ControllerInfo& info() const { return info_; }
  uint32_t index() const { return info_.index; }
  const std::shared_ptr<Client>& client() const { return client_; }
  uint32_t page_size() const { return info_.page_size; }
  size_t mdts_bytes() const { return info_.max_transfer; }  // 0: unlimited
  uint32_t max_queue_depth() const { return info_.max_queue_depth; }
  uint32_t lba_size(uint32_t nsid) const;  // 0 when inactive
  uint64_t nsze(uint32_t nsid) const;      // blocks; 0 when inactive
  // As nvme::Controller::geometry(): what a detached queue pair needs.
  nvme::QueueGeometry geometry(size_t max_transfer = 0) const;
  // Memory the controller can reach (memfds registered with homid).
  const std::shared_ptr<DmaHeap>& dma() const { return heap_; }

  // A ready queue pair (queues in dma() memory; depth, max_transfer, use_sgl, timeout
  // as for Controller::create_queue_pair). nsid: the namespace it will use (0: any).
  std::unique_ptr<nvme::QueuePair> create_queue_pair(nvme::QueueOptions opt = {}, uint32_t nsid = 0);
  // Queues at bus addresses the caller owns (GPU memory); policy must allow it. gpu >= 0:
  // the CUDA device whose threads drive it (homid accounts the queue to that GPU).
  // flags: the AllocFlag bits of the request (kAllocGpu is added for gpu >= 0).
  std::unique_ptr<ExternalQueue> create_queue_at(uint32_t depth, uint64_t sq_bus, uint64_t cq_bus, uint32_t nsid = 0,
                                                 int gpu = -1, uint32_t flags = wire::kAllocExternalMemory);

 private:
  Session() = default;
  std::shared_ptr<Client> client_;
  wire::ControllerInfo info_;
  std::shared_ptr<DmaHeap> heap_;
};

// connect(socket) + Session::open(controller).
std::shared_ptr<Session> open(const std::string& socket, const std::string& controller,
                              const SessionOptions& opt = {});

}  // namespace aisio::homic
