// Packets on a SOCK_SEQPACKET UNIX socket with optional SCM_RIGHTS descriptors.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/fd.hpp"
#include "homi/wire.hpp"

namespace aisio::homi {

using Fd = aisio::Fd;

struct Packet {
  std::vector<uint8_t> bytes;
  std::vector<Fd> fds;
  bool truncated = false;  // bigger than MAX_MESSAGE, or descriptors were cut off
};

enum class RecvResult { ok, closed, again };

// Sends one packet (with `fd` attached when >= 0). nonblocking: EAGAIN throws too (the
// daemon drops a client that does not read its replies). Throws Error(system).
void send_packet(int sock, const std::vector<uint8_t>& bytes, int fd = -1, bool nonblocking = false);
// As send_packet, returning 0 or the errno instead of throwing.
int send_packet_errno(int sock, const std::vector<uint8_t>& bytes, int fd = -1, bool nonblocking = false);
// Receives one packet: descriptors are always collected (and owned by `out`), even
// from malformed packets. closed: orderly shutdown or reset by the peer.
RecvResult recv_packet(int sock, Packet& out, bool nonblocking = false);

// Connects a SOCK_SEQPACKET socket to `path`. Throws Error(system) naming the path.
Fd connect_unix(const std::string& path);

}  // namespace aisio::homi
