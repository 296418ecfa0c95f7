#include "homi/ublk/control.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.hpp"

#if AISIO_HAVE_URING
#include <liburing.h>
#endif

namespace aisio::homi::ublk {

const char* feature_name(unsigned bit) {
  static const char* const names[] = {"SUPPORT_ZERO_COPY", "URING_CMD_COMP_IN_TASK", "NEED_GET_DATA",
                                      "USER_RECOVERY",     "USER_RECOVERY_REISSUE",  "UNPRIVILEGED_DEV",
                                      "CMD_IOCTL_ENCODE",  "USER_COPY",              "ZONED",
                                      "USER_RECOVERY_FAIL_IO"};
  return bit < sizeof names / sizeof names[0] ? names[bit] : nullptr;
}

#if AISIO_HAVE_URING

struct Control::Ring {
  io_uring ring{};
};

Control::Control(const std::string& path) {
  fd_ = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) {
    int e = errno;
    if (e == ENOENT || e == ENODEV || e == ENXIO)
      throw Error(Errc::not_supported,
                  path + " is missing: load the ublk_drv module (modprobe ublk_drv) to export namespaces through ublk");
    throw_errno("open " + path, e);
  }
  ring_ = std::make_unique<Ring>();
  int r = io_uring_queue_init(4, &ring_->ring, IORING_SETUP_SQE128);
  if (r < 0) {
    close(fd_);
    throw_errno("io_uring_queue_init (128-byte SQEs) for ublk control", -r);
  }
  // GET_FEATURES exists only ioctl-encoded; a kernel without it (before 6.5) answers
  // with an error and gets the legacy command numbers.
  uint64_t f = 0;
  encoded_ = true;
  if (run(CMD_GET_FEATURES, UINT32_MAX, &f, sizeof f) >= 0) {
    features_ = f;
    encoded_ = f & F_CMD_IOCTL_ENCODE;
  } else {
    encoded_ = false;
  }
}

Control::~Control() {
  if (ring_) io_uring_queue_exit(&ring_->ring);
  if (fd_ >= 0) close(fd_);
}

int Control::run(uint32_t cmd, uint32_t dev_id, void* buf, uint16_t len, uint64_t data0) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_->ring);
  if (!sqe) return -EBUSY;
  std::memset(sqe, 0, 128);
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = fd_;
  const bool reads = cmd == CMD_GET_DEV_INFO || cmd == CMD_GET_PARAMS || cmd == CMD_GET_FEATURES ||
                     cmd == CMD_GET_DEV_INFO2;
  sqe->cmd_op = encoded_ ? ioc_ctrl(cmd, !reads) : cmd;
  auto* c = reinterpret_cast<CtrlCmd*>(sqe->cmd);
  c->dev_id = dev_id;
  c->queue_id = UINT16_MAX;
  c->addr = uint64_t(uintptr_t(buf));
  c->len = len;
  c->data[0] = data0;
  int r = io_uring_submit(&ring_->ring);
  if (r < 0) return r;
  io_uring_cqe* cqe = nullptr;
  do r = io_uring_wait_cqe(&ring_->ring, &cqe);
  while (r == -EINTR);
  if (r < 0) return r;
  int res = cqe->res;
  io_uring_cqe_seen(&ring_->ring, cqe);
  return res;
}

#else  // built without liburing

struct Control::Ring {};
Control::Control(const std::string&) {
  throw Error(Errc::not_supported, "this homid was built without liburing: ublk export is not available");
}
Control::~Control() = default;
int Control::run(uint32_t, uint32_t, void*, uint16_t, uint64_t) { return -ENOSYS; }

#endif

std::string Control::feature_list() const {
  std::string s;
  for (unsigned b = 0; b < 64; ++b) {
    if (!(features_ >> b & 1)) continue;
    if (!s.empty()) s += ' ';
    const char* n = feature_name(b);
    s += n ? n : "bit" + std::to_string(b);
  }
  return s.empty() ? "(none reported)" : s;
}

namespace {
void check(int r, const std::string& what) {
  if (r < 0) throw_errno(what, -r);
}
}  // namespace

std::optional<DevInfo> Control::info(uint32_t dev_id) {
  DevInfo d{};
  int r = run(CMD_GET_DEV_INFO, dev_id, &d, sizeof d);
  if (r == -ENODEV || r == -ENOENT) return std::nullopt;
  check(r, "ublk GET_DEV_INFO of device " + std::to_string(dev_id));
  return d;
}

DevInfo Control::add(const DevInfo& wanted) {
  DevInfo d = wanted;
  int r = run(CMD_ADD_DEV, wanted.dev_id, &d, sizeof d);
  if (r == -EEXIST)
    throw Error(Errc::invalid_argument, "ublk device id " + std::to_string(wanted.dev_id) +
                                            " is taken (/dev/ublkb" + std::to_string(wanted.dev_id) +
                                            " exists): choose another ublk_id or delete that device");
  check(r, "ublk ADD_DEV");
  return d;
}

void Control::set_params(uint32_t dev_id, const Params& p) {
  Params copy = p;
  check(run(CMD_SET_PARAMS, dev_id, &copy, uint16_t(sizeof copy)), "ublk SET_PARAMS of device " + std::to_string(dev_id));
}

void Control::start(uint32_t dev_id, int32_t pid) {
  check(run(CMD_START_DEV, dev_id, nullptr, 0, uint64_t(pid)), "ublk START_DEV of device " + std::to_string(dev_id));
}
void Control::stop(uint32_t dev_id) {
  check(run(CMD_STOP_DEV, dev_id, nullptr, 0), "ublk STOP_DEV of device " + std::to_string(dev_id));
}
void Control::end_recovery(uint32_t dev_id, int32_t pid) {
  check(run(CMD_END_USER_RECOVERY, dev_id, nullptr, 0, uint64_t(pid)),
        "ublk END_USER_RECOVERY of device " + std::to_string(dev_id));
}

}  // namespace aisio::homi::ublk
