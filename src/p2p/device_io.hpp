// The system calls through which aisio reaches the GPU P2P kernel modules, behind one
// small interface: tests stand in for the kernel here (a fake at the system boundary,
// as tests/pcie/fake_sysfs.hpp does for /sys), never inside the logic above it.
//
// Only descriptors of the module nodes go through this interface. dma-buf descriptors
// are real ones (CUDA's export) and are dup()ed and closed with the plain calls.
#pragma once
#include <memory>
#include <string>

namespace aisio::p2p {

class DeviceIo {
 public:
  virtual ~DeviceIo() = default;
  virtual bool exists(const std::string& path) = 0;                 // the node is there
  virtual int open(const std::string& path) = 0;                    // O_RDWR | O_CLOEXEC: fd, or -errno
  virtual int ioctl(int fd, unsigned long request, void* arg) = 0;  // 0, or -errno
  virtual void close(int fd) noexcept = 0;
};

// The running kernel.
std::shared_ptr<DeviceIo> system_device_io();

// Opens a module's node through `io`. Throws Error: not_supported when the node is not
// there (naming the module and the package that provides it), system otherwise.
int open_module_node(DeviceIo& io, const std::string& node, const char* module, const char* package);

}  // namespace aisio::p2p
