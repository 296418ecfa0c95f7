// ublk device parameters derived from Identify: what the kernel's block layer learns
// about a namespace exported through ublk.
//   logical block = LBA size (LBAF[FLBAS].LBADS), physical block from NPWG (NSFEAT.OPTPERF),
//   size = NSZE, max sectors = the per-request buffer (at most MDTS),
//   volatile cache + FUA when VWC.present, discard when ONCS has Dataset Management,
//   write zeroes when ONCS has Write Zeroes.
#pragma once
#include <cstddef>
#include <cstdint>

#include "homi/ublk/translate.hpp"
#include "homi/ublk/uapi.hpp"
#include "nvme/namespace.hpp"
#include "spec/identify.hpp"

namespace aisio::homi::ublk {

// Throws Error(not_supported) naming the namespace for an LBA format ublk cannot take
// (blocks outside 512..4096 bytes, or metadata interleaved with the data).
void check_lba_format(const nvme::Namespace& ns, const std::string& who);

// max_io_bytes: bytes of one request's buffer (a multiple of the LBA size).
Params make_params(const nvme::IdentifyController& id, const nvme::Namespace& ns, uint32_t max_io_bytes);
NamespaceGeometry make_geometry(const nvme::IdentifyController& id, const nvme::Namespace& ns);

}  // namespace aisio::homi::ublk
