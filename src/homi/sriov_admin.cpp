#include "homi/sriov_admin.hpp"

#include <fcntl.h>
#include <linux/nvme_ioctl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>

#include "common/error.hpp"
#include "nvme/controller.hpp"

namespace aisio::homi {

uint32_t AdminChannel::run_checked(const nvme::Sqe& cmd, const std::string& what, void* data, size_t len) {
  AdminResult r = run(cmd, data, len);
  if (!r.status.ok()) throw Error(r.status, what + " on " + describe());
  return r.dw0;
}

KernelAdminChannel::KernelAdminChannel(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) throw_errno("open " + path_ + (errno == EACCES ? " (admin passthrough needs root)" : ""));
}

KernelAdminChannel::~KernelAdminChannel() {
  if (fd_ >= 0) ::close(fd_);
}

AdminResult KernelAdminChannel::run(const nvme::Sqe& cmd, void* data, size_t len) {
  nvme_passthru_cmd pc;
  std::memset(&pc, 0, sizeof pc);
  pc.opcode = cmd.opc;
  pc.nsid = cmd.nsid;
  pc.cdw2 = cmd.cdw2;
  pc.cdw3 = cmd.cdw3;
  pc.addr = reinterpret_cast<uintptr_t>(data);
  pc.data_len = uint32_t(len);
  pc.cdw10 = cmd.cdw10;
  pc.cdw11 = cmd.cdw11;
  pc.cdw12 = cmd.cdw12;
  pc.cdw13 = cmd.cdw13;
  pc.cdw14 = cmd.cdw14;
  pc.cdw15 = cmd.cdw15;
  pc.timeout_ms = 10000;
  // The kernel maps `data`, builds the PRPs and returns the CQE status field (> 0) or
  // a negative errno when the command never reached the controller.
  int rc = ::ioctl(fd_, NVME_IOCTL_ADMIN_CMD, &pc);
  if (rc < 0) throw_errno("NVME_IOCTL_ADMIN_CMD opcode " + std::to_string(cmd.opc) + " on " + path_);
  return AdminResult{nvme::Status(uint16_t(rc)), pc.result};
}

AdminResult DriverAdminChannel::run(const nvme::Sqe& cmd, void* data, size_t len) {
  DmaBuffer buf;
  if (len) buf = ctrl_->dma()->alloc(len, 4096);
  nvme::Completion c = ctrl_->admin(cmd, len ? &buf : nullptr, len);
  if (c.host != nvme::HostStatus::none)
    throw Error(Errc::controller_fatal, "admin command " + std::to_string(cmd.opc) + " on " + describe() + ": " + c.describe());
  if (len && c.status.ok()) std::memcpy(data, buf.data(), len);
  return AdminResult{c.status, c.dw0};
}

std::string DriverAdminChannel::describe() const { return ctrl_->describe(); }

}  // namespace aisio::homi
