#include "p2p/device_io.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

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

}  // namespace aisio::p2p
