// Client side: which NVMe controller and namespace a homid exports as a ublk block
// device, so tools can name the LBAs of a file on /dev/ublkbN (identity mapping: byte X
// of the device is byte X of the namespace).
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace aisio::homi::ublk {

struct Owner {
  uint32_t ctrl = 0, nsid = 0;
  std::string controller, address, path;
};

bool is_ublk_disk(const std::string& disk);  // "ublkb<N>"
// Asks the homid at `socket`; nullopt when it exports no such device. Throws Error when
// homid cannot be asked.
std::optional<Owner> exported_by(const std::string& disk, const std::string& socket);

}  // namespace aisio::homi::ublk
