// TCP sockets for NVMe/TCP: a non-blocking, TCP_NODELAY connection, and the blocking
// helpers the control path (connect, ICReq) uses with a deadline. Not on the I/O path.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

#include "common/fd.hpp"

namespace aisio::tcp {

using Clock = std::chrono::steady_clock;

using Fd = aisio::Fd;

// Connects to host:port before `deadline`; the socket is non-blocking with TCP_NODELAY.
// Throws Error(system) naming the address and the reason (refused, unreachable), or
// Error(timeout).
Fd connect_tcp(const std::string& host, uint16_t port, Clock::time_point deadline);

// Sends all n bytes, waiting for room until the deadline. Throws Error(system / timeout).
void send_all(int fd, const void* p, size_t n, Clock::time_point deadline, const std::string& what);
// Waits until fd is readable or the deadline passes; false on timeout.
bool wait_readable(int fd, Clock::time_point deadline);

}  // namespace aisio::tcp
