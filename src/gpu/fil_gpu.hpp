// The GPU paths of `aisio fil run`, each reading every file of the data set into GPU
// memory and verifying every byte there (a kernel regenerates the expected content
// from the manifest's content key: fil/content.hpp; files without a key are hashed on
// the host after a copy back, and said so):
//
//   unvme-gpu  our driver, CPU-initiated: a host queue pair, data buffers in GPU memory
//              (P2P), PRPs built by the driver on the GPU memory's bus table.
//   gpu        our driver, GPU-initiated: GPU threads submit the reads from a command
//              list made from the files' extents (--threads queues x --qd threads).
//   cufile     cuFileRead of each file of the mounted data set (libcufile, compat
//              mode when nvidia-fs is absent).
//
// Files are placed in a staging buffer (batches of up to 256 MiB, 4 KiB aligned each),
// poisoned before every batch; holes and unwritten extents are zero-filled on the GPU.
#pragma once
#include <string>

#include "fil/run.hpp"
#include "fil/session.hpp"

namespace aisio::gpu {

fil::PathResult run_fil_path(fil::Session& s, const std::string& name, const fil::RunOptions& o);

}  // namespace aisio::gpu
