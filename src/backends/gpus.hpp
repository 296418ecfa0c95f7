// Several GPUs: which GPUs a run uses (--gpus 0,1) and how its work is spread over them.
// Plain host logic, built without CUDA, so the splitting is tested everywhere; the CUDA
// build's backends (src/gpu) and homid's per-GPU accounting use it.
//
// An entry of the list is one "GPU slot": its own queue pairs on every controller and
// its own buffers. A list may name a GPU twice ([0, 0]): two slots on one GPU, which
// runs the multi-GPU code on a machine with one.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace aisio::backends {

// "0,1" -> {0, 1}; "" -> {fallback}. Throws Error(invalid_argument) naming the bad entry.
std::vector<int> parse_gpu_list(const std::string& s, int fallback = 0);
std::string format_gpu_list(const std::vector<int>& gpus);  // "0,1"

// Files (their sizes) over `slots` slots: largest first onto the slot with the fewest
// bytes (ties: lower slot), each slot's list then in input order. Every file in exactly
// one list; an empty list where there are more slots than files.
std::vector<std::vector<uint32_t>> spread_files(const std::vector<uint64_t>& sizes, size_t slots);

// Queue pairs of a device-initiated run: each slot has `queues` queue pairs on each of
// `devices` controllers; the kernel of slot s drives entries [first[s], first[s] + per_slot).
struct QueuePlan {
  struct Queue {
    uint32_t slot = 0, device = 0, queue = 0;  // queue: index on (slot, device)
  };
  std::vector<Queue> queues;       // slot-major, then device, then queue
  std::vector<uint32_t> first;     // per slot
  uint32_t per_slot = 0;
};
QueuePlan plan_queues(size_t slots, size_t devices, uint32_t queues);

// Thread blocks each physical GPU must hold at once when every slot launches
// `blocks_per_slot` blocks: slots on the same GPU add up.
std::map<int, uint64_t> blocks_per_gpu(const std::vector<int>& gpus, uint64_t blocks_per_slot);

}  // namespace aisio::backends
