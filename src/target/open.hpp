// How each family of handles is opened. Private to src/target.
#pragma once
#include <string_view>

#include "target/target.hpp"

namespace aisio::target {

std::shared_ptr<Target> open_homid(std::string_view rest, const OpenOptions& o);

}  // namespace aisio::target
