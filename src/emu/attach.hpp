// Attaching to an emulator served by another process (`aisio emu --name NAME`):
//
//   auto a = aisio::emu::attach("emu:demo");   // or just "demo"
//   auto ctrl = aisio::nvme::Controller::create(a.bar0, a.dma);
//
// bar0 maps the server's register memfd (describe() == "emu:NAME"); dma is a heap whose
// chunks are memfds handed to the server, so the controller can reach them. The
// connection lives as long as either of the two.
#pragma once
#include <chrono>
#include <cstddef>
#include <memory>
#include <string_view>

#include "memory/dma.hpp"
#include "pcie/mmio.hpp"

namespace aisio::emu {

struct Attached {
  std::shared_ptr<MmioWindow> bar0;
  std::shared_ptr<DmaHeap> dma;
};

struct AttachOptions {
  size_t dma_grow_bytes = 8u << 20;
  // Keep retrying while the socket does not exist or refuses (a server still starting).
  std::chrono::milliseconds wait{0};
};

// Throws aisio::Error: invalid_argument (bad name), system (no server: the message
// names the socket path), protocol (the server refused or spoke another version).
Attached attach(std::string_view name_or_handle, const AttachOptions& opt = {});

}  // namespace aisio::emu
