// Extents resolved by homid (resolve_extents: FIEMAP in the daemon, mapped to the
// namespace) for files under `root`, which must be under one of the policy's dataset
// roots. The queue pairs and memory of `fil --via homid` come from the homid target
// (target/target.hpp); only the extents need the daemon's own request.
#pragma once
#include <memory>
#include <string>

#include "io/extent_source.hpp"
#include "target/target.hpp"

namespace aisio::fil {

// ref.controller: the controller homid must name for each file (any, for a VF).
std::shared_ptr<io::ExtentSource> homid_extents(target::HomidRef ref, std::string root, uint32_t nsid);

}  // namespace aisio::fil
