// fil through homid (--via homid): the queue pairs, DMA memory and extents come from
// the HOMI daemon over its socket (homic), instead of this process owning the
// controller. Built when src/homi provides the client library (aisio_homic).
#pragma once
#include <memory>
#include <string>

#include "io/extent_source.hpp"
#include "io/unvme.hpp"

namespace aisio::fil {

bool homid_built();
std::string homid_default_socket();

// A connection to homid and one of its controllers.
class HomidLink {
 public:
  // Errc::not_supported when not built; the daemon's errors otherwise. function "vf":
  // an SR-IOV virtual function granted by homid (controller: the sriov-pf's name, "0"
  // or "" = any), driven entirely by this process; "" or "queue": queue pairs of
  // `controller` created by homid.
  static std::shared_ptr<HomidLink> open(const std::string& socket, const std::string& controller,
                                         const std::string& function = "");
  virtual ~HomidLink() = default;
  virtual io::NvmeAccess access(uint32_t nsid) = 0;
  // Extents resolved by homid (FIEMAP in the daemon, mapped to the namespace) for files
  // under `root`, which must be under one of the policy's dataset roots.
  virtual std::shared_ptr<io::ExtentSource> extents(const std::string& root, uint32_t nsid) = 0;
  virtual std::string describe() const = 0;
};

}  // namespace aisio::fil
