#include "common/fd_passing.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace aisio {

int send_with_fd(int sock, const void* data, size_t len, int fd, int flags) {
  iovec iov{const_cast<void*>(data), len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    std::memset(control, 0, sizeof control);
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  ssize_t n;
  do n = sendmsg(sock, &msg, flags);
  while (n < 0 && errno == EINTR);
  if (n < 0) return errno;
  if (size_t(n) != len) return EMSGSIZE;
  return 0;
}

Received recv_with_fds(int sock, void* buf, size_t cap, int flags) {
  iovec iov{buf, cap};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  Received r;
  do r.n = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
  while (r.n < 0 && errno == EINTR);
  if (r.n < 0) {
    r.err = errno;
    return r;
  }
  // Descriptors are collected even from a malformed packet, so that the caller can close them.
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (r.nfds < int(kMaxPassedFds)) r.fds[r.nfds++] = fd;
      else close(fd);  // cannot happen with this control buffer; never leak
    }
  }
  r.truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
  return r;
}

}  // namespace aisio
