#include "homi/ublk/params.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "common/error.hpp"

namespace aisio::homi::ublk {

namespace {
constexpr uint32_t PAGE_SHIFT = 12;  // ublk_drv: logical block at most PAGE_SIZE
constexpr uint64_t WZ_MAX_BLOCKS = 65536;

const nvme::LbaFormat& format_of(const nvme::Namespace& ns) {
  return ns.id->lbaf[nvme::flbas_index(ns.id->flbas)];
}
}  // namespace

void check_lba_format(const nvme::Namespace& ns, const std::string& who) {
  const uint32_t shift = std::countr_zero(ns.lba_size);
  if (shift < 9 || shift > PAGE_SHIFT)
    throw Error(Errc::not_supported, fmt::format("{}: namespace {} has {}-byte blocks; ublk takes 512 to 4096-byte "
                                                 "blocks (reformat it or leave ublk off for it)",
                                                 who, ns.nsid, ns.lba_size));
  if (ns.id && format_of(ns).ms)
    throw Error(Errc::not_supported, fmt::format("{}: namespace {} carries {} bytes of metadata per block, which ublk "
                                                 "cannot pass; export a format without metadata",
                                                 who, ns.nsid, format_of(ns).ms));
}

NamespaceGeometry make_geometry(const nvme::IdentifyController& id, const nvme::Namespace& ns) {
  NamespaceGeometry g;
  g.nsid = ns.nsid;
  g.lba_shift = uint32_t(std::countr_zero(ns.lba_size));
  g.nsze = ns.nsze;
  g.discard = id.oncs & nvme::oncs::DATASET_MANAGEMENT;
  g.write_zeroes = id.oncs & nvme::oncs::WRITE_ZEROES;
  return g;
}

Params make_params(const nvme::IdentifyController& id, const nvme::Namespace& ns, uint32_t max_io_bytes) {
  const uint32_t lbs = uint32_t(std::countr_zero(ns.lba_size));
  Params p;
  std::memset(&p, 0, sizeof p);
  p.len = sizeof p;
  p.types = PARAM_TYPE_BASIC;
  ParamBasic& b = p.basic;
  b.logical_bs_shift = uint8_t(lbs);
  // NPWG (0-based, in blocks) is the preferred write granularity when NSFEAT bit 4 says
  // the NP* fields are valid; the kernel's nvme driver uses it as the physical block too.
  uint32_t pbs = lbs;
  if (ns.id && (ns.id->nsfeat & (1u << 4))) {
    uint32_t npwg = uint32_t(ns.id->npwg) + 1;
    if (std::has_single_bit(npwg)) pbs = std::min<uint32_t>(lbs + uint32_t(std::countr_zero(npwg)), PAGE_SHIFT);
  }
  b.physical_bs_shift = uint8_t(pbs);
  b.io_min_shift = uint8_t(pbs);
  b.max_sectors = max_io_bytes >> 9;
  b.dev_sectors = ns.nsze << (lbs - 9);
  if (id.vwc & 1u) b.attrs |= ATTR_VOLATILE_CACHE | ATTR_FUA;
  const bool dsm = id.oncs & nvme::oncs::DATASET_MANAGEMENT;
  const bool wz = id.oncs & nvme::oncs::WRITE_ZEROES;
  if (dsm || wz) {
    p.types |= PARAM_TYPE_DISCARD;
    ParamDiscard& d = p.discard;
    d.discard_granularity = 1u << pbs;  // the kernel wants it non-zero even for write zeroes only
    if (dsm) {
      // One DSM range per request (NLB of a range is 32 bits of blocks; sectors are 32 bits).
      d.max_discard_sectors = UINT32_MAX >> (lbs - 9) << (lbs - 9);
      d.max_discard_segments = 1;
    }
    if (wz) d.max_write_zeroes_sectors = uint32_t(std::min<uint64_t>(WZ_MAX_BLOCKS << (lbs - 9), UINT32_MAX));
  }
  return p;
}

}  // namespace aisio::homi::ublk
