#include "emu/attach.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <thread>

#include "common/error.hpp"
#include "emu/protocol.hpp"
#include "emu/register_file.hpp"
#include "emu/shm.hpp"

namespace aisio::emu {

namespace {

// The client end of the socket: one request at a time.
class Connection {
 public:
  explicit Connection(Fd fd) : fd_(std::move(fd)) {}

  // Send a request and return its reply; an error reply becomes an exception.
  template <class T>
  ipc::Message request(ipc::MsgType type, const T& payload, int fd = -1) {
    std::lock_guard lk(mu_);
    uint32_t seq = ++seq_;
    ipc::send_message(fd_.get(), type, seq, payload, fd);
    ipc::Message m;
    if (!ipc::recv_message(fd_.get(), m)) throw Error(Errc::protocol, "emulator closed the connection");
    if (m.header.seq != seq) throw Error(Errc::protocol, "emulator reply out of sequence");
    if (m.type() == ipc::MsgType::error) {
      ipc::ErrorReply e{};
      std::memcpy(&e, m.payload.data(), std::min<size_t>(m.header.length, sizeof e));
      e.text[sizeof e.text - 1] = 0;
      throw Error(Errc::protocol, std::string("emulator refused: ") + e.text);
    }
    return m;
  }

 private:
  Fd fd_;
  std::mutex mu_;
  uint32_t seq_ = 0;
};

// A DMA chunk: our mapping of a memfd the server also mapped.
struct RemoteRegion {
  std::shared_ptr<Connection> conn;
  SharedMemory mem;
  uint64_t bus = 0;
  ~RemoteRegion() {
    if (!bus) return;
    try {  // best effort: if the server is gone, so is its mapping
      conn->request(ipc::MsgType::unmap_dma, ipc::UnmapDma{bus});
    } catch (const Error&) {
    }
  }
};

class RemoteDmaBackend final : public DmaBackend {
 public:
  RemoteDmaBackend(std::shared_ptr<Connection> c, std::string name) : conn_(std::move(c)), name_(std::move(name)) {}
  DmaChunk grow(size_t min_bytes) override {
    size_t len = (min_bytes + 4095) & ~size_t(4095);
    auto r = std::make_shared<RemoteRegion>();
    r->conn = conn_;
    r->mem = SharedMemory::create("aisio-emu-dma", len);
    ipc::Message m = conn_->request(ipc::MsgType::map_dma, ipc::MapDma{len}, r->mem.fd());
    ipc::MapDmaOk ok{};
    if (m.type() != ipc::MsgType::map_dma_ok || !m.get(ok)) throw Error(Errc::protocol, "bad map_dma reply");
    r->bus = ok.bus;
    // Members initialise in order: va is read before keepalive takes the region.
    return DmaChunk{.va = r->mem.data(), .len = len, .page_shift = 63, .bus = {ok.bus}, .keepalive = std::move(r)};
  }
  std::string name() const override { return name_; }

 private:
  std::shared_ptr<Connection> conn_;
  std::string name_;
};

Fd connect_socket(const std::string& path, std::chrono::milliseconds wait) {
  sockaddr_un a = ipc::socket_address(path);
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    Fd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!fd) throw_errno("socket");
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
    int e = errno;
    bool retry = (e == ENOENT || e == ECONNREFUSED) && std::chrono::steady_clock::now() < deadline;
    if (!retry) throw_errno("connect to emulator at " + path + " (is `aisio emu` running?)", e);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

Attached attach(std::string_view handle, const AttachOptions& opt) {
  std::string name(ipc::strip_handle(handle));
  std::string path = ipc::socket_path(name);
  auto conn = std::make_shared<Connection>(connect_socket(path, opt.wait));
  ipc::Message m = conn->request(ipc::MsgType::hello, ipc::Hello{uint32_t(getpid()), 0});
  ipc::HelloOk ok{};
  if (m.type() != ipc::MsgType::hello_ok || !m.get(ok) || !m.fd)
    throw Error(Errc::protocol, "bad hello reply from emulator " + name);
  struct BarMapping {
    SharedMemory mem;
    std::shared_ptr<Connection> conn;
  };
  auto bar =
      std::make_shared<BarMapping>(BarMapping{SharedMemory::adopt(m.fd.release(), size_t(ok.bar_size), true), conn});
  Attached a;
  a.bar0 = std::make_shared<EmuMmioWindow>(bar->mem.data(), bar->mem.size(), "emu:" + name, bar);
  a.dma = DmaHeap::create(std::make_unique<RemoteDmaBackend>(conn, "emu:" + name), opt.dma_grow_bytes);
  return a;
}

}  // namespace aisio::emu
