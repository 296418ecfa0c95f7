#include "homi/transport.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.hpp"
#include "common/fd_passing.hpp"

namespace aisio::homi {

void send_packet(int sock, const std::vector<uint8_t>& bytes, int fd, bool nonblocking) {
  int e = send_packet_errno(sock, bytes, fd, nonblocking);
  if (e) throw_errno("homi socket send", e);
}

int send_packet_errno(int sock, const std::vector<uint8_t>& bytes, int fd, bool nonblocking) {
  return send_with_fd(sock, bytes.data(), bytes.size(), fd, MSG_NOSIGNAL | (nonblocking ? MSG_DONTWAIT : 0));
}

RecvResult recv_packet(int sock, Packet& out, bool nonblocking) {
  out.bytes.resize(wire::MAX_MESSAGE + 1);  // one more: an oversized packet shows as MSG_TRUNC
  out.fds.clear();
  out.truncated = false;
  const int flags = nonblocking ? MSG_DONTWAIT : 0;
  Received r = recv_with_fds(sock, out.bytes.data(), out.bytes.size(), flags);
  if (r.n < 0 && r.err == ECONNRESET) {
    // A peer that closed with our message unread resets the connection, and the reset
    // is reported before what it sent us last (e.g. homid's refusal): fetch that first.
    r = recv_with_fds(sock, out.bytes.data(), out.bytes.size(), flags | MSG_DONTWAIT);
    if (r.n <= 0) {
      for (int i = 0; i < r.nfds; ++i) close(r.fds[i]);
      return RecvResult::closed;
    }
  }
  if (r.n < 0) {
    if (r.err == EAGAIN || r.err == EWOULDBLOCK) return RecvResult::again;
    if (r.err == ECONNRESET || r.err == EPIPE || r.err == ENOTCONN) return RecvResult::closed;
    throw_errno("homi socket receive", r.err);
  }
  for (int i = 0; i < r.nfds; ++i) out.fds.emplace_back(r.fds[i]);
  if (r.n == 0 && out.fds.empty()) {
    out.bytes.clear();
    return RecvResult::closed;  // SEQPACKET: a zero-length read is the peer's shutdown
  }
  out.bytes.resize(size_t(r.n));
  if (r.truncated || size_t(r.n) > wire::MAX_MESSAGE) out.truncated = true;
  return RecvResult::ok;
}

Fd connect_unix(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof a.sun_path)
    throw Error(Errc::invalid_argument, "homid socket path '" + path + "' is empty or too long");
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  Fd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) throw_errno("socket");
  int r;
  do r = connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  while (r != 0 && errno == EINTR);
  if (r != 0) throw_errno("connect to homid at " + path + " (is homid running?)");
  return fd;
}

}  // namespace aisio::homi
