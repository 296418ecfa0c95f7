// The software controller as an SR-IOV primary controller: flexible VQ/VI resources,
// secondary controller states, and the commands that show and change them (Identify
// CNS 14h/15h, Virtualization Management). Runs on the controller thread only.
// The state is the controller's, not the admin queue's: a controller reset keeps it.
#pragma once
#include <cstdint>
#include <vector>

#include "emu/config.hpp"
#include "emu/outcome.hpp"
#include "spec/commands.hpp"

namespace aisio::emu {

class Virtualization {
 public:
  Virtualization(const SecondaryControllers& cfg, uint16_t primary_cntlid);

  bool enabled() const { return !secondaries_.empty(); }
  void fill_primary_caps(uint8_t* out) const;                      // 4096 bytes
  void fill_secondary_list(uint16_t first_scid, uint8_t* out) const;  // 4096 bytes
  Outcome manage(const nvme::Sqe& cmd);  // Virtualization Management

 private:
  struct Secondary {
    uint16_t scid = 0, vfn = 0;
    bool online = false;
    uint16_t nvq = 0, nvi = 0;
  };
  struct Pool {
    uint32_t total = 0;      // flexible resources
    uint16_t max = 0;        // per secondary
    uint16_t gran = 1;
    uint16_t primary = 0;    // allocated to the primary (Primary Controller Flexible Allocation)
    uint16_t priv = 0;       // the primary's private resources
  };
  Secondary* find(uint16_t scid);
  uint32_t assigned(const Pool& p, const Secondary* except) const;  // to secondaries
  Pool& pool(uint8_t rt) { return rt == 0 ? vq_ : vi_; }

  uint16_t primary_;
  Pool vq_, vi_;
  std::vector<Secondary> secondaries_;
};

}  // namespace aisio::emu
