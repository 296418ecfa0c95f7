// The GPU paths of `aisio fil run`: the file workload on the GPU backends, each reading
// every file of the data set into GPU memory and verifying every byte there (a kernel
// regenerates the expected content from the manifest's content key: fil/content.hpp;
// files without a key are hashed on the host after a copy back, and said so):
//
//   unvme-gpu  UnvmeGpuQueue (unvme_gpu_queue.hpp): our driver, CPU-initiated, data
//              buffers in GPU memory (P2P).
//   gpu        DeviceQueue (device_queue.hpp): our driver, GPU-initiated: GPU threads
//              submit the reads (--threads queues x --qd threads per GPU).
//   cufile     CufileQueue (cufile_queue.hpp): cuFileRead of each file of the mounted
//              data set (libcufile, compat mode when nvidia-fs is absent).
//
// One loop drives all three (submit while the queue has room, flush, reap). Files are
// placed in a staging buffer (batches of up to 256 MiB, 4 KiB aligned each), poisoned
// before every batch; holes and unwritten extents are zero-filled on the GPU.
//
// Several GPUs (--gpus 0,1): the files are spread over the list (backends/gpus.hpp),
// each entry (slot) with its own staging buffer and queues on its GPU; one host thread
// per GPU drives its slots (those of one GPU one after another); the results add up into
// one PathResult.
#pragma once
#include <string>
#include <vector>

#include "fil/run.hpp"
#include "fil/session.hpp"

namespace aisio::gpu {

fil::PathResult run_fil_path(fil::Session& s, const std::string& name, const fil::RunOptions& o,
                             const std::vector<int>& gpus = {0});

}  // namespace aisio::gpu
