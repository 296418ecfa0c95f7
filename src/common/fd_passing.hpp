// Sending one packet with an optional file descriptor (SCM_RIGHTS) over a UNIX socket:
// shared by the emulator's attach protocol and homid's.
#pragma once
#include <cstddef>

namespace aisio {

// sendmsg of [data, data + len) with fd attached when fd >= 0; retries EINTR.
// Returns 0, or the errno of the failure (EMSGSIZE for a short send).
int send_with_fd(int sock, const void* data, size_t len, int fd, int flags);

}  // namespace aisio
