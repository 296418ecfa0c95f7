// /dev/ublk-control: the ublk_drv control commands (ADD_DEV, SET_PARAMS, START_DEV,
// STOP_DEV, DEL_DEV, GET_DEV_INFO, GET_FEATURES, user recovery), each an
// IORING_OP_URING_CMD on a private 128-byte-SQE io_uring, run synchronously.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "homi/ublk/uapi.hpp"

namespace aisio::homi::ublk {

inline constexpr const char* CONTROL_PATH = "/dev/ublk-control";

class Control {
 public:
  // Throws Error(not_supported) "load the ublk_drv module" when /dev/ublk-control is
  // missing, Error(system) for other failures. Probes GET_FEATURES.
  explicit Control(const std::string& path = CONTROL_PATH);
  ~Control();
  Control(const Control&) = delete;
  Control& operator=(const Control&) = delete;

  uint64_t features() const { return features_; }  // 0 when the kernel cannot say
  std::string feature_list() const;                  // "CMD_IOCTL_ENCODE USER_RECOVERY ..."

  // The device's info, or nullopt when no device has that id. Throws otherwise.
  std::optional<DevInfo> info(uint32_t dev_id);
  DevInfo add(const DevInfo& wanted);  // throws; EEXIST is reported as "taken"
  void set_params(uint32_t dev_id, const Params& p);
  // Returns once every queue has fetched all its tags (the queue threads must run).
  void start(uint32_t dev_id, int32_t server_pid);
  void stop(uint32_t dev_id);   // the kernel drains the disk before this returns
  void end_recovery(uint32_t dev_id, int32_t server_pid);

  // Runs one command; returns the CQE result (>= 0) or -errno.
  int run(uint32_t cmd, uint32_t dev_id, void* buf, uint16_t len, uint64_t data0 = 0);

 private:
  struct Ring;
  std::unique_ptr<Ring> ring_;
  int fd_ = -1;
  uint64_t features_ = 0;
  bool encoded_ = false;  // ioctl-encoded command numbers
};

}  // namespace aisio::homi::ublk
