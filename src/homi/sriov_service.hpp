// homid's side of hardware-assisted delegation: the sriov-pf controllers of the
// configuration (one SriovPf each), and the requests that list, grant and release
// their virtual functions. A client holds a VF alone and runs the whole driver on it
// (its own admin queue, I/O queues, doorbells and reset); homid never touches the VF's
// BAR while it is held. On release or when the client's connection closes, the VF is
// reset (FLR, secondary controller offline/online) before anyone else gets it.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "homi/config.hpp"
#include "homi/managed.hpp"
#include "homi/sriov_pf.hpp"
#include "homi/transport.hpp"
#include "homi/wire.hpp"

namespace aisio::homi {

class SriovService {
 public:
  // Starts every PF in order; when one fails, those already started are stopped again
  // and the error is thrown. `first_index` numbers the PFs after the other controllers.
  SriovService(const std::vector<ControllerConfig>& pfs, uint32_t first_index);
  ~SriovService();

  wire::ListFunctionsOk list(const AccessRule& rule) const;
  // Throws Error (the refusal for the client). The descriptor reaches the VF's BAR0.
  std::pair<wire::GrantFunctionOk, Fd> grant(uint64_t client, const AccessRule& rule, const wire::GrantFunction& r);
  void release(uint64_t client, const wire::ReleaseFunction& r);
  void release_client(uint64_t client) noexcept;
  size_t held_by(uint64_t client) const;

  // resolve_extents: a namespace of a PF the rule allows that `dev` holds.
  std::optional<BackingOwner> match_backing(const AccessRule& rule, const extents::BlockDevice& dev) const;

 private:
  struct Pf {
    ControllerConfig cfg;
    std::unique_ptr<SriovPf> pf;
  };
  Pf& find(const std::string& name, const AccessRule& rule);
  wire::FunctionInfo info(const Pf& p, const VfState& v) const;

  uint32_t first_index_;
  std::vector<Pf> pfs_;
};

}  // namespace aisio::homi
