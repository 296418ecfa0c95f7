// Writes seed streams for pdu_fuzz: well-formed PDU sequences in both directions, with
// and without digests, as the encoders produce them.
#include <cstdio>
#include <string>
#include <vector>

#include "tcp/decoder.hpp"
#include "tcp/pdu.hpp"

using namespace aisio::tcp;

namespace {
void append(std::vector<uint8_t>& w, const uint8_t* h, uint32_t n, uint32_t data_len, Digests dg) {
  w.insert(w.end(), h, h + n);
  std::vector<uint8_t> data(data_len, 0x5A);
  w.insert(w.end(), data.begin(), data.end());
  if (data_len && dg.data) {
    uint32_t c = crc32c(data.data(), data_len);
    w.insert(w.end(), reinterpret_cast<uint8_t*>(&c), reinterpret_cast<uint8_t*>(&c) + 4);
  }
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string out = argv[1];
  for (int mode = 0; mode < 8; ++mode) {
    const Digests dg{bool(mode & 2), bool(mode & 4)};
    const bool controller = mode & 1;
    std::vector<uint8_t> w{uint8_t(mode), uint8_t(mode * 37 + 1)};
    alignas(8) uint8_t h[512];
    aisio::nvme::Sqe sqe{};
    aisio::nvme::Cqe cqe{};
    if (controller) {
      append(w, h, encode_capsule_cmd(h, sqe, 0, dg, 0), 0, dg);
      append(w, h, encode_capsule_cmd(h, sqe, 1024, dg, 0), 1024, dg);
      append(w, h, encode_data(h, pdu::H2C_DATA, pdu::LAST_PDU, 1, 2, 0, 512, dg, 0), 512, dg);
      append(w, h, encode_term_req(h, pdu::H2C_TERM_REQ, 1, 0, h, 24), 0, dg);
    } else {
      append(w, h, encode_capsule_resp(h, cqe, dg), 0, dg);
      append(w, h, encode_data(h, pdu::C2H_DATA, pdu::LAST_PDU | pdu::SUCCESS, 1, 0, 0, 700, dg, 3), 700, dg);
      append(w, h, encode_r2t(h, 1, 2, 0, 4096, dg), 0, dg);
      append(w, h, encode_term_req(h, pdu::C2H_TERM_REQ, 2, 0, h, 24), 0, dg);
    }
    FILE* f = std::fopen((out + "/seed-" + std::to_string(mode)).c_str(), "wb");
    if (!f) return 1;
    std::fwrite(w.data(), 1, w.size(), f);
    std::fclose(f);
  }
  return 0;
}
