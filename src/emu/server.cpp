#include "emu/server.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "emu/protocol.hpp"
#include "emu/shm.hpp"

namespace aisio::emu {

namespace {

constexpr size_t MAX_CLIENTS = 64;

void mkdir_p(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i < dir.size() && dir[i] != '/') continue;
    std::string p = dir.substr(0, i);
    if (mkdir(p.c_str(), 0755) != 0 && errno != EEXIST) throw_errno("mkdir " + p);
  }
}

}  // namespace

struct EmuServer::Impl {
  Impl(std::string n, EmuConfig cfg) : name(std::move(n)), path(ipc::socket_path(name)), ctrl(std::move(cfg)) {}
  ~Impl() { stop(); }

  struct Client {
    int fd;
    std::vector<uint64_t> regions;  // bus bases this client mapped
  };

  void start();
  void stop();
  void run();
  bool handle(Client& c);
  void drop(Client& c);

  std::string name, path;
  SoftController ctrl;
  Fd listen_fd, wake_fd;
  std::thread thread;
  bool started = false;
  std::vector<Client> clients_;   // server thread only
};

void EmuServer::Impl::start() {
  if (started) return;
  mkdir_p(ipc::run_dir());
  sockaddr_un addr = ipc::socket_address(path);
  {
    const Fd probe(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!probe) throw_errno("socket");
    // A socket file left by a dead server is stale if nobody answers on it.
    if (connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
      throw Error(Errc::invalid_argument, "an emulator named '" + name + "' is already listening on " + path);
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw Error(Errc::invalid_argument, path + " exists and is not a socket");
    unlink(path.c_str());  // stale
  }
  Fd lfd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!lfd) throw_errno("socket");
  if (bind(lfd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw_errno("bind " + path);
  if (listen(lfd.get(), 16) != 0) {
    int e = errno;
    unlink(path.c_str());
    throw_errno("listen " + path, e);
  }
  Fd wfd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wfd) {
    int e = errno;
    unlink(path.c_str());
    throw_errno("eventfd", e);
  }
  listen_fd = std::move(lfd);
  wake_fd = std::move(wfd);
  ctrl.start();
  thread = std::thread([this] { run(); });
  pthread_setname_np(thread.native_handle(), "aisio-emu-srv");
  started = true;
}

void EmuServer::Impl::stop() {
  if (!started) return;
  uint64_t one = 1;
  if (write(wake_fd.get(), &one, sizeof one) < 0) { /* the thread also exits on its next poll */ }
  thread.join();
  for (Client& c : clients_) drop(c);
  clients_.clear();
  listen_fd.reset();
  wake_fd.reset();
  unlink(path.c_str());
  ctrl.stop();
  started = false;
}

void EmuServer::Impl::run() {
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    fds.push_back({wake_fd.get(), POLLIN, 0});
    fds.push_back({listen_fd.get(), POLLIN, 0});
    for (Client& c : clients_) fds.push_back({c.fd, POLLIN, 0});
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents) return;
    // Clients first: indices in fds match clients_ until we add or remove any.
    std::vector<size_t> gone;
    for (size_t i = 0; i < clients_.size(); ++i)
      if (fds[i + 2].revents && !handle(clients_[i])) gone.push_back(i);
    for (size_t k = gone.size(); k-- > 0;) {
      drop(clients_[gone[k]]);
      clients_.erase(clients_.begin() + long(gone[k]));
    }
    if (fds[1].revents & POLLIN) {
      // Non-blocking: a client that stops reading its replies is dropped, not waited for.
      int c = accept4(listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c >= 0) {
        if (clients_.size() >= MAX_CLIENTS) {
          try {
            ipc::send_error(c, 0, int(Errc::no_memory), "too many clients");
          } catch (const Error&) {
          }
          close(c);
        } else {
          clients_.push_back({c, {}});
        }
      }
    }
  }
}

namespace {
// An error reply; false if the client can no longer be reached.
bool reply_error(int fd, uint32_t seq, Errc code, const char* text) {
  try {
    ipc::send_error(fd, seq, int(code), text);
    return true;
  } catch (const Error&) {
    return false;
  }
}
}  // namespace

// One request from a client. false: the connection is finished (closed, or unusable).
bool EmuServer::Impl::handle(Client& c) {
  ipc::Message m;
  try {
    if (!ipc::recv_message(c.fd, m)) return false;
  } catch (const Error& e) {
    if (e.code() != Errc::protocol) return false;
    return reply_error(c.fd, m.header.seq, Errc::protocol, e.what());
  }
  uint32_t seq = m.header.seq;
  try {
    switch (m.type()) {
      case ipc::MsgType::hello: {
        ipc::Hello h{};
        if (!m.get(h)) throw Error(Errc::protocol, "hello: bad payload size");
        ipc::send_message(c.fd, ipc::MsgType::hello_ok, seq, ipc::HelloOk{ctrl.bar0_size()}, ctrl.bar0_fd());
        return true;
      }
      case ipc::MsgType::map_dma: {
        ipc::MapDma req{};
        if (!m.get(req)) throw Error(Errc::protocol, "map_dma: bad payload size");
        if (!m.fd) throw Error(Errc::protocol, "map_dma: no memfd attached");
        if (req.len == 0 || req.len > DmaSpace::MAX_REGION) throw Error(Errc::protocol, "map_dma: bad length");
        // adopt() owns the descriptor from here on, even when it throws.
        auto mem = std::make_shared<SharedMemory>(SharedMemory::adopt(m.fd.release(), size_t(req.len), true));
        uint64_t bus = ctrl.dma_space()->map(mem->data(), mem->size(), mem);
        c.regions.push_back(bus);
        ipc::send_message(c.fd, ipc::MsgType::map_dma_ok, seq, ipc::MapDmaOk{bus});
        return true;
      }
      case ipc::MsgType::unmap_dma: {
        ipc::UnmapDma req{};
        if (!m.get(req)) throw Error(Errc::protocol, "unmap_dma: bad payload size");
        auto it = std::find(c.regions.begin(), c.regions.end(), req.bus);
        if (it == c.regions.end()) throw Error(Errc::invalid_argument, "unmap_dma: not a region of this client");
        c.regions.erase(it);
        ctrl.dma_space()->unmap(req.bus);  // returns once no device thread can touch it
        ipc::send_message(c.fd, ipc::MsgType::unmap_dma_ok, seq, nullptr, 0);
        return true;
      }
      default: throw Error(Errc::protocol, "unknown request type " + std::to_string(m.header.type));
    }
  } catch (const Error& e) {
    return reply_error(c.fd, seq, e.code(), e.what());
  }
}

void EmuServer::Impl::drop(Client& c) {
  for (uint64_t bus : c.regions) {
    try {
      ctrl.dma_space()->unmap(bus);
    } catch (const Error&) {
    }
  }
  c.regions.clear();
  close(c.fd);
  c.fd = -1;
}

EmuServer::EmuServer(std::string name, EmuConfig cfg) : impl_(std::make_unique<Impl>(std::move(name), std::move(cfg))) {}
EmuServer::~EmuServer() = default;
void EmuServer::start() { impl_->start(); }
void EmuServer::stop() { impl_->stop(); }
const std::string& EmuServer::socket_path() const { return impl_->path; }
SoftController& EmuServer::controller() { return impl_->ctrl; }

}  // namespace aisio::emu
