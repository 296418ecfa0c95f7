// One packet with file descriptors (SCM_RIGHTS) over a UNIX socket, each way: shared by
// the emulator's attach protocol and homid's.
#pragma once
#include <sys/types.h>

#include <cstddef>

namespace aisio {

// sendmsg of [data, data + len) with fd attached when fd >= 0; retries EINTR.
// Returns 0, or the errno of the failure (EMSGSIZE for a short send).
int send_with_fd(int sock, const void* data, size_t len, int fd, int flags);

constexpr size_t kMaxPassedFds = 8;  // per packet; more are cut off (truncated)

struct Received {
  ssize_t n = -1;          // bytes received; 0 is the peer's shutdown; -1: see err
  int err = 0;             // errno when n < 0
  bool truncated = false;  // MSG_TRUNC or MSG_CTRUNC: the packet or its descriptors were cut
  int nfds = 0;
  int fds[kMaxPassedFds];  // received descriptors (close-on-exec): the caller owns them
};

// recvmsg of one packet into [buf, buf + cap) with up to kMaxPassedFds descriptors
// (MSG_CMSG_CLOEXEC added to flags); retries EINTR.
Received recv_with_fds(int sock, void* buf, size_t cap, int flags);

}  // namespace aisio
