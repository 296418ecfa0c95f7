// EmuServer: a SoftController other processes attach to (see attach.hpp), listening on
// ${AISIO_RUN_DIR:-/tmp/aisio}/emu-<name>.sock. A client receives the BAR0 memfd and
// maps its DMA memfds into the controller's DmaSpace; when it disconnects or dies,
// its DMA regions are unmapped (after the device threads let go of them). Queues it
// left behind stay until the next user resets the controller (CC.EN 1 -> 0).
#pragma once
#include <memory>
#include <string>

#include "emu/config.hpp"
#include "emu/controller.hpp"

namespace aisio::emu {

class EmuServer {
 public:
  EmuServer(std::string name, EmuConfig cfg);
  ~EmuServer();
  EmuServer(const EmuServer&) = delete;
  EmuServer& operator=(const EmuServer&) = delete;

  // Start the controller and listen. Throws if another server holds the name.
  void start();
  void stop();  // idempotent; removes the socket

  const std::string& socket_path() const;
  SoftController& controller();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aisio::emu
