// Admin commands to a primary controller that homid does not drive itself. The PF of an
// SR-IOV device stays with the kernel nvme driver, so its admin queue is the kernel's:
// KernelAdminChannel sends through the admin passthrough ioctl (NVME_IOCTL_ADMIN_CMD on
// /dev/nvmeN). DriverAdminChannel runs them on our own driver's admin queue, which is
// how the unit tests put the software controller in the PF's place.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "spec/commands.hpp"
#include "spec/status.hpp"

namespace aisio::nvme {
class Controller;
}

namespace aisio::homi {

struct AdminResult {
  nvme::Status status;
  uint32_t dw0 = 0;
};

class AdminChannel {
 public:
  virtual ~AdminChannel() = default;
  // Runs cmd; `len` bytes of controller-to-host data land in `data` (Identify). The
  // channel fills in the data pointer. Throws Error(system) when the command could not
  // be sent at all; a controller's refusal is a status, not an exception.
  virtual AdminResult run(const nvme::Sqe& cmd, void* data = nullptr, size_t len = 0) = 0;
  virtual std::string describe() const = 0;
  // As run(), throwing Error(status) naming `what` on a non-zero status.
  uint32_t run_checked(const nvme::Sqe& cmd, const std::string& what, void* data = nullptr, size_t len = 0);
};

class KernelAdminChannel final : public AdminChannel {
 public:
  explicit KernelAdminChannel(std::string char_device);  // "/dev/nvme0"; throws when it cannot be opened
  ~KernelAdminChannel() override;
  AdminResult run(const nvme::Sqe& cmd, void* data, size_t len) override;
  std::string describe() const override { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

class DriverAdminChannel final : public AdminChannel {
 public:
  explicit DriverAdminChannel(std::shared_ptr<nvme::Controller> ctrl) : ctrl_(std::move(ctrl)) {}
  AdminResult run(const nvme::Sqe& cmd, void* data, size_t len) override;
  std::string describe() const override;

 private:
  std::shared_ptr<nvme::Controller> ctrl_;
};

}  // namespace aisio::homi
