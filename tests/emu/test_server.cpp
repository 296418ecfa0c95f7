// The emulator served over its UNIX socket: attach from another process, and a server
// that survives malformed requests and clients that vanish.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "common/error.hpp"
#include "common/expect_error.hpp"
#include "emu/attach.hpp"
#include "emu/protocol.hpp"
#include "emu/raw_host.hpp"
#include "emu/server.hpp"
#include "emu/shm.hpp"

using aisio::test::expect_error;

namespace aisio::emu {
namespace {

using namespace std::chrono_literals;
using test::RawHost;
using test::status_of;

EmuConfig server_config() {
  EmuConfig c;
  c.idle = {20, 10, 200};
  c.namespaces = {NamespaceConfig{8u << 20, 4096, Backing::ram, ""}};
  return c;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/aisio-emu-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir = tmpl;
    setenv("AISIO_RUN_DIR", dir.c_str(), 1);
    name = "t" + std::to_string(getpid());
  }
  void TearDown() override {
    if (child > 0) {
      kill(child, SIGTERM);
      int status = 0;
      waitpid(child, &status, 0);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    }
    std::filesystem::remove_all(dir);
  }
  // A server in a child process, stopped by SIGTERM in TearDown.
  void spawn() {
    child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGTERM);
      pthread_sigmask(SIG_BLOCK, &set, nullptr);
      int code = 0;
      try {
        EmuServer s(name, server_config());
        s.start();
        int sig;
        sigwait(&set, &sig);
        s.stop();
      } catch (...) {
        code = 3;
      }
      _exit(code);
    }
  }
  static void io_round_trip(RawHost& host, uint64_t lba) {
    ASSERT_TRUE(host.enable());
    ASSERT_TRUE(host.create_pair(1).ok());
    auto w = host.heap().alloc(8192), r = host.heap().alloc(8192);
    for (size_t i = 0; i < w.size(); ++i) w.data()[i] = uint8_t(i * 13 + lba);
    nvme::Sqe s = nvme::cmd::write(1, lba, 2);
    s.prp1 = w.iova();
    s.prp2 = w.iova(4096);
    ASSERT_TRUE(status_of(host.run(host.io(1), s)).ok());
    s.opc = nvme::nvm::READ;
    s.prp1 = r.iova();
    s.prp2 = r.iova(4096);
    ASSERT_TRUE(status_of(host.run(host.io(1), s)).ok());
    EXPECT_EQ(std::memcmp(w.data(), r.data(), 8192), 0);
  }

  std::string dir, name;
  pid_t child = -1;
};

TEST_F(ServerTest, AttachFromAnotherProcess) {
  spawn();
  {
    Attached a = attach("emu:" + name, {8u << 20, 10s});
    EXPECT_EQ(a.bar0->describe(), "emu:" + name);
    RawHost host(a.bar0, a.dma);
    io_round_trip(host, 7);
  }
  // The first client left its queues; the next one resets the controller and goes on.
  Attached b = attach(name, {});
  RawHost host(b.bar0, b.dma);
  ASSERT_TRUE(host.disable());
  io_round_trip(host, 9);
}

TEST_F(ServerTest, NoServer) {
  try {
    attach("nobody-here");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::system);
    EXPECT_NE(std::string(e.what()).find("emu-nobody-here.sock"), std::string::npos);
  }
  expect_error([] { attach("emu:../etc"); }, Errc::invalid_argument, "../etc': use 1-64 of [A-Za-z0-9._-]");
}

// Raw protocol access to an in-process server.
int raw_connect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  return fd;
}

ipc::MsgType reply_type(int fd) {
  ipc::Message m;
  if (!ipc::recv_message(fd, m)) return ipc::MsgType(0);
  return m.type();
}

TEST_F(ServerTest, MalformedRequestsGetErrors) {
  EmuServer server(name, server_config());
  server.start();
  expect_error([&] { EmuServer(name, server_config()).start(); }, Errc::invalid_argument,
               "an emulator named '" + name + "' is already listening on");
  int fd = raw_connect(server.socket_path());
  ASSERT_GE(fd, 0);
  const char junk[] = "definitely not a header";
  ASSERT_GT(send(fd, junk, sizeof junk, 0), 0);
  EXPECT_EQ(reply_type(fd), ipc::MsgType::error);
  ipc::Header h{ipc::MAGIC, 99, uint16_t(ipc::MsgType::hello), 0, 1};
  ASSERT_GT(send(fd, &h, sizeof h, 0), 0);
  EXPECT_EQ(reply_type(fd), ipc::MsgType::error);  // wrong version
  ipc::send_message(fd, ipc::MsgType(77), 2, nullptr, 0);
  EXPECT_EQ(reply_type(fd), ipc::MsgType::error);
  ipc::send_message(fd, ipc::MsgType::map_dma, 3, ipc::MapDma{4096});  // no memfd
  EXPECT_EQ(reply_type(fd), ipc::MsgType::error);
  ipc::send_message(fd, ipc::MsgType::unmap_dma, 4, ipc::UnmapDma{uint64_t(1) << 40});
  EXPECT_EQ(reply_type(fd), ipc::MsgType::error);
  // An unsealed fd could be truncated under the device's feet: refused.
  int plain = memfd_create("unsealed", MFD_CLOEXEC);
  ASSERT_EQ(ftruncate(plain, 4096), 0);
  ipc::send_message(fd, ipc::MsgType::map_dma, 5, ipc::MapDma{4096}, plain);
  close(plain);
  EXPECT_EQ(reply_type(fd), ipc::MsgType::error);
  // A sealed one that is shorter than claimed: refused.
  SharedMemory small = SharedMemory::create("small", 4096);
  ipc::send_message(fd, ipc::MsgType::map_dma, 6, ipc::MapDma{1 << 20}, small.fd());
  EXPECT_EQ(reply_type(fd), ipc::MsgType::error);
  ipc::send_message(fd, ipc::MsgType::hello, 7, ipc::Hello{1, 0});
  EXPECT_EQ(reply_type(fd), ipc::MsgType::hello_ok);
  close(fd);
  // Still serving.
  Attached a = attach(name);
  RawHost host(a.bar0, a.dma);
  io_round_trip(host, 3);
}

TEST_F(ServerTest, DepartedClientsLoseTheirDma) {
  EmuServer server(name, server_config());
  server.start();
  auto space = server.controller().dma_space();
  {
    Attached a = attach(name);
    auto buf = a.dma->alloc(4096);
    EXPECT_EQ(space->mapped_regions(), 1u);
    EXPECT_NE(space->translate(buf.iova(), 4096), nullptr);
  }
  EXPECT_EQ(space->mapped_regions(), 0u);  // released with the heap
  // A client that vanishes without unmapping.
  int fd = raw_connect(server.socket_path());
  SharedMemory mem = SharedMemory::create("dma", 1 << 16);
  ipc::send_message(fd, ipc::MsgType::map_dma, 1, ipc::MapDma{1 << 16}, mem.fd());
  ipc::Message m;
  ASSERT_TRUE(ipc::recv_message(fd, m));
  ipc::MapDmaOk ok{};
  ASSERT_TRUE(m.get(ok));
  EXPECT_NE(space->translate(ok.bus, 1 << 16), nullptr);
  close(fd);
  for (int i = 0; i < 500 && space->mapped_regions(); ++i) std::this_thread::sleep_for(2ms);
  EXPECT_EQ(space->mapped_regions(), 0u);
  EXPECT_EQ(space->translate(ok.bus, 1), nullptr);
}

}  // namespace
}  // namespace aisio::emu
