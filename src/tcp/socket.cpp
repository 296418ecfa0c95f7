#include "tcp/socket.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.hpp"

namespace aisio::tcp {

using namespace std::chrono;

namespace {
int ms_left(Clock::time_point deadline) {
  auto left = duration_cast<milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : int(std::min<long long>(left, 1000000));
}
}  // namespace

Fd connect_tcp(const std::string& host, uint16_t port, Clock::time_point deadline) {
  const std::string where = host + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0)
    throw Error(Errc::system, "NVMe/TCP: cannot resolve " + host + ": " + gai_strerror(rc));
  std::string last = "no address";
  Fd fd;
  for (addrinfo* a = res; a; a = a->ai_next) {
    Fd s(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
    if (!s) {
      last = std::strerror(errno);
      continue;
    }
    int one = 1;
    ::setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(s.get(), a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last = std::strerror(errno);
      continue;
    }
    pollfd p{s.get(), POLLOUT, 0};
    int rc = ::poll(&p, 1, ms_left(deadline));
    if (rc == 0) {
      ::freeaddrinfo(res);
      throw Error(Errc::timeout, "NVMe/TCP: connecting to " + where + " timed out");
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (rc < 0 || err) {
      last = std::strerror(rc < 0 ? errno : err);
      continue;
    }
    fd = std::move(s);
    break;
  }
  ::freeaddrinfo(res);
  if (!fd) throw Error(Errc::system, "NVMe/TCP: cannot connect to " + where + ": " + last);
  return fd;
}

void send_all(int fd, const void* p, size_t n, Clock::time_point deadline, const std::string& what) {
  auto* b = static_cast<const uint8_t*>(p);
  while (n) {
    ssize_t k = ::send(fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k > 0) {
      b += k, n -= size_t(k);
      continue;
    }
    if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) throw_errno("NVMe/TCP: send " + what);
    pollfd pf{fd, POLLOUT, 0};
    if (::poll(&pf, 1, ms_left(deadline)) == 0) throw Error(Errc::timeout, "NVMe/TCP: send " + what + " timed out");
  }
}

bool wait_readable(int fd, Clock::time_point deadline) {
  pollfd pf{fd, POLLIN, 0};
  for (;;) {
    int rc = ::poll(&pf, 1, ms_left(deadline));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) throw_errno("NVMe/TCP: poll");
  }
}

}  // namespace aisio::tcp
