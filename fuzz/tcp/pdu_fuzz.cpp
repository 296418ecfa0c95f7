// libFuzzer target for the NVMe/TCP PDU decoder (src/tcp/decoder.hpp). Input: byte 0
// picks the role and the digests, byte 1 how the rest is cut into feed() calls; the rest
// is the stream. aisio::Error is the only acceptable failure, and a data PDU's bytes
// must land inside the buffer the handler gave.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "common/error.hpp"
#include "tcp/decoder.hpp"

namespace {
struct Handler {
  std::vector<uint8_t> buf;
  uint64_t pdus = 0;
  uint8_t* data_target(const uint8_t* h, uint32_t len) {
    if (h[0] == aisio::tcp::pdu::C2H_TERM_REQ || h[0] == aisio::tcp::pdu::H2C_TERM_REQ) return nullptr;
    if (len > (1u << 20)) throw aisio::Error(aisio::Errc::protocol, "too large for the fuzz handler");
    buf.assign(len, 0);
    return buf.data();
  }
  void on_pdu(const uint8_t* h) {
    if (reinterpret_cast<const aisio::tcp::CommonHeader*>(h)->hlen > aisio::tcp::pdu::IC_HLEN) std::abort();
    ++pdus;
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  using namespace aisio::tcp;
  Decoder d(data[0] & 1 ? Role::controller : Role::host, 1u << 20);
  d.set_digests({bool(data[0] & 2), bool(data[0] & 4)});
  const size_t cut = data[1] ? data[1] : 4096;
  Handler h;
  try {
    for (size_t off = 2; off < size; off += cut) d.feed(data + off, std::min(cut, size - off), h);
  } catch (const aisio::Error&) {
    if (!d.failed()) std::abort();  // a failure must stick
  }
  return 0;
}
