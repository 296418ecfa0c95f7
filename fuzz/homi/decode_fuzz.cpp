// Fuzz target of the homid message decoder (src/homi/wire.cpp): the bytes of one
// packet, as a client could send them, plus how many descriptors came with it.
//
// Input: byte 0 % 3 = descriptors attached; bytes 1.. = the packet. Properties:
//   - decode() either returns a message or throws aisio::Error(protocol); it never
//     crashes, reads out of bounds (ASan) or hits undefined behaviour (UBSan);
//   - whatever decodes re-encodes to exactly the same bytes (the encoding is canonical).
//
// Built by fuzz/homi/run with clang -fsanitize=fuzzer, and by tests/homi (g++) into
// homi_fuzz_replay with replay_main.cpp. Set HOMI_FUZZ_SEED_DIR to have the libFuzzer
// binary write its seed corpus (one valid message of every type) there first.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "homi/wire.hpp"

namespace wire = aisio::homi::wire;

std::vector<std::vector<uint8_t>> homi_fuzz_seeds() {
  std::vector<wire::Body> bodies;
  bodies.push_back(wire::Hello{1, 1, 1234, "seed"});
  wire::HelloOk ho;
  ho.daemon = "homid";
  bodies.push_back(ho);
  bodies.push_back(wire::ListControllers{});
  wire::ListControllersOk lo;
  wire::ControllerInfo ci;
  ci.name = "soft0";
  ci.namespaces = {{1, 512, 131072, 1}};
  lo.controllers = {ci};
  bodies.push_back(lo);
  bodies.push_back(wire::Identify{0, 1, 0});
  bodies.push_back(wire::IdentifyOk{std::vector<uint8_t>(64, 7)});
  bodies.push_back(wire::AllocQueue{0, 128, 1, 0, 0x10000000000, 0x10000002000});
  bodies.push_back(wire::AllocQueueOk{3, 128, 1, 0, 8192, 0, 4096});
  bodies.push_back(wire::ReleaseQueue{0, 3});
  bodies.push_back(wire::ReleaseQueueOk{});
  bodies.push_back(wire::RegisterDma{0, 8 << 20});
  bodies.push_back(wire::RegisterDmaOk{1, 21, {0x200000, 0x400000}});
  bodies.push_back(wire::UnregisterDma{0, 1});
  bodies.push_back(wire::UnregisterDmaOk{});
  bodies.push_back(wire::ResolveExtents{1, 0, 100});
  wire::ResolveExtentsOk ro;
  ro.path = "/data/x";
  ro.extents = {{0, 4096, 65536, 16}};
  bodies.push_back(ro);
  bodies.push_back(wire::Stats{1});
  wire::StatsOk so;
  so.clients = {wire::ClientStat{1, 2, 3, 4, "c", "r", 1, 1, 4096, 9, 0, 5}};
  so.queues = {wire::QueueStat{1, 0, 1, 64, 1, 0, 3}};
  so.controllers = {wire::ControllerStat{0, "soft0", 1, 8, 1, 5, 6, 7, 8, 0}};
  bodies.push_back(so);
  bodies.push_back(wire::ErrorReply{7, "nope"});
  std::vector<std::vector<uint8_t>> out;
  uint32_t seq = 1;
  for (auto& b : bodies) {
    std::vector<uint8_t> s{uint8_t(wire::fds_of(wire::type_of(b)))};
    auto bytes = wire::encode(seq++, b);
    s.insert(s.end(), bytes.begin(), bytes.end());
    out.push_back(std::move(s));
  }
  return out;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("HOMI_FUZZ_SEED_DIR");
  if (!dir || !*dir) return 0;
  int i = 0;
  for (auto& s : homi_fuzz_seeds()) {
    std::string path = std::string(dir) + "/seed-" + std::to_string(i++);
    if (FILE* f = std::fopen(path.c_str(), "wb")) {
      std::fwrite(s.data(), 1, s.size(), f);
      std::fclose(f);
    }
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  unsigned fds = data[0] % 3;
  std::span<const uint8_t> packet(data + 1, size - 1);
  wire::Message m;
  try {
    m = wire::decode(packet, fds);
  } catch (const aisio::Error& e) {
    if (e.code() != aisio::Errc::protocol) std::abort();
    return 0;
  }
  std::vector<uint8_t> again = wire::encode(m.header.seq, m.body);
  if (again.size() != packet.size() || std::memcmp(again.data(), packet.data(), again.size()) != 0) {
    std::fprintf(stderr, "homi fuzz: %s does not re-encode to the same bytes\n", wire::type_name(wire::type_of(m.body)));
    std::abort();
  }
  return 0;
}
