// The Linux ublk_drv user-space ABI (include/uapi/linux/ublk_cmd.h) as far as homid
// uses it. Debian's /usr/include/linux/ublk_cmd.h is the 6.1 header (no ioctl-encoded
// commands, no GET_FEATURES), so the definitions we rely on live here; what the running
// kernel supports is asked with UBLK_U_CMD_GET_FEATURES, never assumed.
#pragma once
#include <linux/ioctl.h>

#include <cstdint>

namespace aisio::homi::ublk {

// Control commands on /dev/ublk-control, ioctl-encoded (UBLK_F_CMD_IOCTL_ENCODE). The
// legacy plain numbers (the low byte) are accepted by kernels built with
// BLKDEV_UBLK_LEGACY_OPCODES; we use the encoded ones when the kernel says it has them.
inline constexpr uint32_t CMD_GET_DEV_INFO = 0x02;
inline constexpr uint32_t CMD_ADD_DEV = 0x04;
inline constexpr uint32_t CMD_DEL_DEV = 0x05;
inline constexpr uint32_t CMD_START_DEV = 0x06;
inline constexpr uint32_t CMD_STOP_DEV = 0x07;
inline constexpr uint32_t CMD_SET_PARAMS = 0x08;
inline constexpr uint32_t CMD_GET_PARAMS = 0x09;
inline constexpr uint32_t CMD_START_USER_RECOVERY = 0x10;
inline constexpr uint32_t CMD_END_USER_RECOVERY = 0x11;
inline constexpr uint32_t CMD_GET_DEV_INFO2 = 0x12;
inline constexpr uint32_t CMD_GET_FEATURES = 0x13;

// Per-tag I/O commands on /dev/ublkcN.
inline constexpr uint32_t IO_FETCH_REQ = 0x20;
inline constexpr uint32_t IO_COMMIT_AND_FETCH_REQ = 0x21;

// struct ublksrv_ctrl_cmd: the payload of a control URING_CMD (in the SQE's cmd area).
struct CtrlCmd {
  uint32_t dev_id;    // UINT32_MAX on ADD_DEV: the kernel picks one
  uint16_t queue_id;  // UINT16_MAX when the command is not about one queue
  uint16_t len;       // bytes at addr
  uint64_t addr;      // user buffer of the command (dev info, params, features)
  uint64_t data[1];   // inline argument (START_DEV / END_USER_RECOVERY: server pid)
  uint16_t dev_path_len;
  uint16_t pad;
  uint32_t reserved;
};
static_assert(sizeof(CtrlCmd) == 32);

// struct ublksrv_io_cmd: the payload of FETCH_REQ / COMMIT_AND_FETCH_REQ.
struct IoCmd {
  uint16_t q_id;
  uint16_t tag;
  int32_t result;  // COMMIT: bytes done (READ/WRITE), 0, or a negative errno
  uint64_t addr;   // the tag's I/O buffer: the kernel copies request data to/from it
};
static_assert(sizeof(IoCmd) == 16);

constexpr uint32_t ioc_ctrl(uint32_t nr, bool write) {
  return write ? uint32_t(_IOWR('u', nr, CtrlCmd)) : uint32_t(_IOR('u', nr, CtrlCmd));
}
constexpr uint32_t ioc_io(uint32_t nr) { return uint32_t(_IOWR('u', nr, IoCmd)); }

// Device features (ublksrv_ctrl_dev_info.flags; GET_FEATURES reports those supported;
// feature_name() knows the names of the others).
inline constexpr uint64_t F_USER_RECOVERY = 1ull << 3;
inline constexpr uint64_t F_USER_RECOVERY_REISSUE = 1ull << 4;
inline constexpr uint64_t F_CMD_IOCTL_ENCODE = 1ull << 6;
const char* feature_name(unsigned bit);  // "USER_RECOVERY", or nullptr for unknown bits

// ublksrv_ctrl_dev_info.state
inline constexpr uint16_t S_DEV_LIVE = 1;
inline constexpr uint16_t S_DEV_QUIESCED = 2;

// struct ublksrv_ctrl_dev_info (ADD_DEV in/out, GET_DEV_INFO out).
struct DevInfo {
  uint16_t nr_hw_queues;
  uint16_t queue_depth;
  uint16_t state;
  uint16_t pad0;
  uint32_t max_io_buf_bytes;
  uint32_t dev_id;
  int32_t ublksrv_pid;
  uint32_t pad1;
  uint64_t flags;
  uint64_t ublksrv_flags;
  uint32_t owner_uid;
  uint32_t owner_gid;
  uint64_t reserved1;
  uint64_t reserved2;
};
static_assert(sizeof(DevInfo) == 64);

// Result of a FETCH / COMMIT_AND_FETCH completion.
inline constexpr int32_t IO_RES_OK = 0;          // a request is in the tag's descriptor
// -ENODEV: the queue is being torn down; do not fetch again.

// Request operations (ublksrv_io_desc.op_flags bits 7:0) and flags (31:8).
inline constexpr uint8_t IO_OP_READ = 0;
inline constexpr uint8_t IO_OP_WRITE = 1;
inline constexpr uint8_t IO_OP_FLUSH = 2;
inline constexpr uint8_t IO_OP_DISCARD = 3;
inline constexpr uint8_t IO_OP_WRITE_SAME = 4;
inline constexpr uint8_t IO_OP_WRITE_ZEROES = 5;
inline constexpr uint32_t IO_F_FUA = 1u << 13;
inline constexpr uint32_t IO_F_NOUNMAP = 1u << 14;

// struct ublksrv_io_desc: one per tag, in the read-only array mmap()ed from /dev/ublkcN.
struct IoDesc {
  uint32_t op_flags;
  uint32_t nr_sectors;    // 512-byte sectors
  uint64_t start_sector;  // 512-byte sectors
  uint64_t addr;          // the buffer given with FETCH / COMMIT_AND_FETCH
  uint8_t op() const { return uint8_t(op_flags & 0xFFu); }
};
static_assert(sizeof(IoDesc) == 24);

inline constexpr uint64_t CMD_BUF_OFFSET = 0;  // mmap offset of queue 0's descriptor array
inline constexpr uint32_t MAX_QUEUE_DEPTH = 4096;

// Parameters (SET_PARAMS / GET_PARAMS).
inline constexpr uint32_t ATTR_VOLATILE_CACHE = 1u << 2;
inline constexpr uint32_t ATTR_FUA = 1u << 3;

struct ParamBasic {
  uint32_t attrs;
  uint8_t logical_bs_shift;
  uint8_t physical_bs_shift;
  uint8_t io_opt_shift;
  uint8_t io_min_shift;
  uint32_t max_sectors;
  uint32_t chunk_sectors;
  uint64_t dev_sectors;
  uint64_t virt_boundary_mask;
};
static_assert(sizeof(ParamBasic) == 32);

struct ParamDiscard {
  uint32_t discard_alignment;
  uint32_t discard_granularity;
  uint32_t max_discard_sectors;
  uint32_t max_write_zeroes_sectors;
  uint16_t max_discard_segments;
  uint16_t reserved0;
};
static_assert(sizeof(ParamDiscard) == 20);

struct ParamDevt {  // read-only: reported by GET_PARAMS
  uint32_t char_major, char_minor, disk_major, disk_minor;
};

struct ParamZoned {
  uint32_t max_open_zones, max_active_zones, max_zone_append_sectors;
  uint8_t reserved[20];
};

inline constexpr uint32_t PARAM_TYPE_BASIC = 1u << 0;
inline constexpr uint32_t PARAM_TYPE_DISCARD = 1u << 1;

// struct ublk_params up to the zoned part; `len` tells the kernel how much of it we
// know (newer kernels accept a shorter structure).
struct Params {
  uint32_t len;
  uint32_t types;
  ParamBasic basic;
  ParamDiscard discard;
  ParamDevt devt;
  ParamZoned zoned;
};

}  // namespace aisio::homi::ublk
