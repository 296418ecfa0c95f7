#include "homi/ublk/owner.hpp"

#include <algorithm>
#include <cctype>

#include "homi/client.hpp"

namespace aisio::homi::ublk {

bool is_ublk_disk(const std::string& disk) {
  return disk.size() > 5 && disk.starts_with("ublkb") &&
         std::all_of(disk.begin() + 5, disk.end(), [](unsigned char d) { return std::isdigit(d); });
}

std::optional<Owner> exported_by(const std::string& disk, const std::string& socket) {
  if (!is_ublk_disk(disk)) return std::nullopt;
  auto c = homic::Client::connect(socket, {.name = "aisio extents"});
  auto st = c->stats(false);
  for (auto& u : st.ublk) {
    if (u.path != "/dev/" + disk) continue;
    Owner o{u.ctrl, u.nsid, "", "", u.path};
    for (auto& ci : c->controllers())
      if (ci.index == u.ctrl) {
        o.controller = ci.name;
        o.address = ci.address;
      }
    return o;
  }
  return std::nullopt;
}

}  // namespace aisio::homi::ublk
