#include "p2p/device_io.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.hpp"

namespace aisio::p2p {

namespace {
class SystemIo final : public DeviceIo {
 public:
  bool exists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }
  int open(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
  }
  int ioctl(int fd, unsigned long request, void* arg) override { return ::ioctl(fd, request, arg) < 0 ? -errno : 0; }
  void close(int fd) noexcept override { ::close(fd); }
};
}  // namespace

std::shared_ptr<DeviceIo> system_device_io() {
  static auto io = std::make_shared<SystemIo>();
  return io;
}

int open_module_node(DeviceIo& io, const std::string& node, const char* module, const char* package) {
  int fd = io.open(node);
  if (fd >= 0) return fd;
  if (fd == -ENOENT || fd == -ENODEV || fd == -ENXIO)
    throw Error(Errc::not_supported,
                fmt::format("{} is not there ({}): the {} kernel module is not loaded; install the {} package and "
                            "load its module",
                            node, std::strerror(-fd), module, package));
  if (fd == -EACCES || fd == -EPERM)
    throw Error(Errc::system, fmt::format("open {}: {}: run as root or give your user read-write access to the node",
                                          node, std::strerror(-fd)));
  throw Error(Errc::system, fmt::format("open {}: {}", node, std::strerror(-fd)));
}

}  // namespace aisio::p2p
