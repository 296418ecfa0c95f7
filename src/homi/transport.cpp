#include "homi/transport.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.hpp"
#include "common/fd_passing.hpp"

namespace aisio::homi {

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) reset(o.release());
  return *this;
}

void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

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
  iovec iov{out.bytes.data(), out.bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  constexpr size_t MAX_FDS = 8;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * MAX_FDS)];
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  int flags = MSG_CMSG_CLOEXEC | (nonblocking ? MSG_DONTWAIT : 0);
  ssize_t n;
  do n = recvmsg(sock, &msg, flags);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno == ECONNRESET) {
    // A peer that closed with our message unread resets the connection, and the reset
    // is reported before what it sent us last (e.g. homid's refusal): fetch that first.
    msg.msg_controllen = sizeof control;
    msg.msg_flags = 0;
    n = recvmsg(sock, &msg, flags | MSG_DONTWAIT);
    if (n <= 0) return RecvResult::closed;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return RecvResult::again;
    if (errno == ECONNRESET || errno == EPIPE || errno == ENOTCONN) return RecvResult::closed;
    throw_errno("homi socket receive");
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      out.fds.emplace_back(fd);
    }
  }
  if (n == 0 && out.fds.empty()) {
    out.bytes.clear();
    return RecvResult::closed;  // SEQPACKET: a zero-length read is the peer's shutdown
  }
  out.bytes.resize(size_t(n));
  if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || size_t(n) > wire::MAX_MESSAGE) out.truncated = true;
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
