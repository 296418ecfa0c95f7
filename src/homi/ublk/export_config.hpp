// `[[controller.namespace]] ublk = true` and its knobs: export the namespace to the
// kernel as /dev/ublkbN through homid's ublk server.
#pragma once
#include <cstdint>

namespace aisio::homi::ublk {

struct ExportConfig {
  bool enabled = false;
  int64_t dev_id = -1;     // ublk_id: /dev/ublkb<id>; -1: the kernel picks (no recovery after a crash)
  uint16_t queues = 1;     // ublk_queues: ublk hardware queues = NVMe I/O queue pairs reserved for the kernel
  uint16_t depth = 64;     // ublk_depth: tags per queue (the NVMe queue gets depth + 1 entries)
  uint32_t max_io_kib = 512;  // ublk_max_io_kib: largest request (capped by MDTS)
};

}  // namespace aisio::homi::ublk
