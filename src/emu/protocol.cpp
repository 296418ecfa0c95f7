#include "emu/protocol.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "common/error.hpp"
#include "common/fd_passing.hpp"

namespace aisio::emu::ipc {

std::string run_dir() {
  const char* d = std::getenv("AISIO_RUN_DIR");
  return d && *d ? d : "/tmp/aisio";
}

std::string_view strip_handle(std::string_view handle) {
  if (handle.substr(0, 4) == "emu:") handle.remove_prefix(4);
  return handle;
}

std::string socket_path(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                c == '_' || c == '-');
  if (!ok || name == "." || name == "..")
    throw Error(Errc::invalid_argument, "emulator name '" + std::string(name) + "': use 1-64 of [A-Za-z0-9._-]");
  return run_dir() + "/emu-" + std::string(name) + ".sock";
}

sockaddr_un socket_address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) throw Error(Errc::invalid_argument, "socket path too long: " + path);
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

void send_message(int sock, MsgType type, uint32_t seq, const void* payload, size_t len, int fd) {
  if (len > MAX_MESSAGE - sizeof(Header)) throw Error(Errc::protocol, "emu message too long");
  uint8_t buf[MAX_MESSAGE];
  Header h{MAGIC, VERSION, uint16_t(type), uint32_t(len), seq};
  std::memcpy(buf, &h, sizeof h);
  if (len) std::memcpy(buf + sizeof h, payload, len);
  int e = send_with_fd(sock, buf, sizeof h + len, fd, MSG_NOSIGNAL);
  if (e) throw_errno("emu socket send", e);
}

bool recv_message(int sock, Message& out) {
  out = Message{};
  uint8_t buf[MAX_MESSAGE];
  Received r = recv_with_fds(sock, buf, sizeof buf, 0);
  if (r.n < 0) {
    if (r.err == ECONNRESET) return false;
    throw_errno("emu socket receive", r.err);
  }
  auto close_all = [&] {
    for (int i = 0; i < r.nfds; ++i) close(r.fds[i]);
  };
  if (r.n == 0) {
    close_all();
    return false;
  }
  const char* bad = nullptr;
  Header h{};
  if (r.truncated) bad = "message truncated";
  else if (size_t(r.n) < sizeof h) bad = "message shorter than its header";
  else {
    std::memcpy(&h, buf, sizeof h);
    if (h.magic != MAGIC) bad = "bad magic";
    else if (h.version != VERSION) bad = "unsupported protocol version";
    else if (h.length != size_t(r.n) - sizeof h) bad = "length field does not match the message";
    else if (r.nfds > 1) bad = "more than one descriptor";
  }
  out.header = h;
  if (bad) {
    close_all();
    throw Error(Errc::protocol, std::string("emu protocol: ") + bad);
  }
  std::memcpy(out.payload.data(), buf + sizeof h, h.length);
  out.fd.reset(r.nfds ? r.fds[0] : -1);
  return true;
}

void send_error(int sock, uint32_t seq, int errc, const std::string& text) {
  ErrorReply r{};
  r.errc = errc;
  std::memcpy(r.text, text.data(), std::min(text.size(), sizeof r.text - 1));
  send_message(sock, MsgType::error, seq, r);
}

}  // namespace aisio::emu::ipc
