// A free list of address ranges (start -> length in a std::map), first fit, neighbours
// coalesced: the DMA heap's chunks (offsets) and the VFIO container's IOVA space.
#pragma once
#include <cstdint>
#include <map>
#include <optional>

namespace aisio {

using FreeRanges = std::map<uint64_t, uint64_t>;

// Puts [start, start + len) back, merged with the free ranges it touches.
void free_range(FreeRanges& f, uint64_t start, uint64_t len);

// Takes len bytes from the first range that holds them at an address aligned to align
// (a power of two), range start s lying at address base + s; returns where they start
// (the range's coordinates), or nullopt when no range holds them.
std::optional<uint64_t> take_range(FreeRanges& f, uint64_t len, uint64_t align, uint64_t base = 0);

}  // namespace aisio
