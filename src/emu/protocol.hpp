// The emulator's UNIX-socket protocol (SOCK_SEQPACKET, one message per packet).
//
// Every message: Header (magic, version, type, payload length, sequence number), then
// a fixed-size payload; a file descriptor may ride along (SCM_RIGHTS). The client sends
// a request and waits for the reply with the same sequence number; any request the
// server cannot honour gets an `error` reply, never a dropped connection or a crash.
//
//   hello      {pid}          -> hello_ok {bar_size} + BAR0 memfd
//   map_dma    {len} + memfd  -> map_dma_ok {bus}   (memfd sealed F_SEAL_SHRINK)
//   unmap_dma  {bus}          -> unmap_dma_ok {}
//   any                        -> error {errc, text}
#pragma once
#include <sys/un.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "common/fd.hpp"

namespace aisio::emu::ipc {

inline constexpr uint32_t MAGIC = 0x554D4541;  // "AEMU"
inline constexpr uint16_t VERSION = 1;
inline constexpr size_t MAX_MESSAGE = 512;

enum class MsgType : uint16_t {
  hello = 1,
  hello_ok = 2,
  map_dma = 3,
  map_dma_ok = 4,
  unmap_dma = 5,
  unmap_dma_ok = 6,
  error = 15,
};

struct Header {
  uint32_t magic;
  uint16_t version;
  uint16_t type;
  uint32_t length;  // payload bytes after the header
  uint32_t seq;
};
static_assert(sizeof(Header) == 16);

struct Hello {
  uint32_t pid;
  uint32_t reserved;
};
struct HelloOk {
  uint64_t bar_size;
};
struct MapDma {
  uint64_t len;
};
struct MapDmaOk {
  uint64_t bus;
};
struct UnmapDma {
  uint64_t bus;
};
struct ErrorReply {
  int32_t errc;  // aisio::Errc
  char text[MAX_MESSAGE - sizeof(Header) - 4];
};
static_assert(sizeof(Header) + sizeof(ErrorReply) == MAX_MESSAGE);

struct Message {
  Header header{};
  std::array<uint8_t, MAX_MESSAGE - sizeof(Header)> payload{};
  Fd fd;  // received descriptor: closed with the message unless taken (release())

  MsgType type() const { return MsgType(header.type); }
  // Exact-size payload decode; false if the length does not match.
  template <class T>
  bool get(T& out) const {
    if (header.length != sizeof(T)) return false;
    std::memcpy(&out, payload.data(), sizeof(T));
    return true;
  }
};

// "${AISIO_RUN_DIR:-/tmp/aisio}"
std::string run_dir();
// run_dir() + "/emu-NAME.sock". NAME: 1-64 of [A-Za-z0-9._-]; throws otherwise.
std::string socket_path(std::string_view name);
// The AF_UNIX address of `path`; throws when the path does not fit.
sockaddr_un socket_address(const std::string& path);
// "emu:NAME" or "NAME" -> NAME.
std::string_view strip_handle(std::string_view handle);

// One message with an optional descriptor. Throws aisio::Error(system) on failure.
void send_message(int sock, MsgType type, uint32_t seq, const void* payload, size_t len, int fd = -1);
template <class T>
void send_message(int sock, MsgType type, uint32_t seq, const T& payload, int fd = -1) {
  send_message(sock, type, seq, &payload, sizeof payload, fd);
}
// Receive one message. false: the peer closed the connection. Throws
// aisio::Error(protocol) for a malformed message (any descriptor it carried is closed),
// aisio::Error(system) for socket errors.
bool recv_message(int sock, Message& out);
// An error reply carrying `text`.
void send_error(int sock, uint32_t seq, int errc, const std::string& text);

}  // namespace aisio::emu::ipc
