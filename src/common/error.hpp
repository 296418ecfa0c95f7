// The one error type of aisio: a category, a message, and the NVMe status when a
// controller returned one.
#pragma once
#include <stdexcept>
#include <string>

#include "spec/status.hpp"

namespace aisio {

enum class Errc {
  invalid_argument,  // caller error: bad LBA range, unaligned buffer, bad option
  nvme_status,       // the controller completed the command with a non-zero status
  timeout,           // no completion within the command's timeout
  controller_fatal,  // CSTS.CFS set, or the controller stopped answering
  not_ready,         // CSTS.RDY did not reach the expected value within CAP.TO
  no_memory,         // DMA memory or queue slots exhausted
  system,            // a syscall failed (errno in the message)
  protocol,          // malformed IPC message or on-disk structure
  not_supported,     // feature absent on this controller, kernel or build
  io,                // data verification or transfer failure
};

const char* errc_name(Errc e);

class Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& msg) : std::runtime_error(msg), code_(code) {}
  Error(nvme::Status st, const std::string& what)
      : std::runtime_error(what + ": " + nvme::status_name(st)), code_(Errc::nvme_status), status_(st) {}
  Errc code() const { return code_; }
  nvme::Status status() const { return status_; }

 private:
  Errc code_;
  nvme::Status status_{};
};

// Error from errno: "open /dev/uio0: Permission denied".
[[noreturn]] void throw_errno(const std::string& what);
[[noreturn]] void throw_errno(const std::string& what, int err);

}  // namespace aisio
