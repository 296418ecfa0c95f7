// How each family of handles is opened. Private to src/target.
#pragma once
#include <string_view>

#include "target/target.hpp"

namespace aisio::target {

// homid (queue pairs of a controller homid drives) or homid-vf (a VF it grants).
std::shared_ptr<Target> open_homid(std::string_view rest, const OpenOptions& o, bool vf);
// tcp://HOST[:PORT]/SUBNQN: a fabrics controller over NVMe/TCP.
std::shared_ptr<Target> open_tcp(const std::string& url, const OpenOptions& o);

}  // namespace aisio::target
