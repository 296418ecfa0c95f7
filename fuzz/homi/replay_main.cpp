// A libFuzzer-compatible driver for g++ builds: replays files given on the command
// line, the built-in seeds, then a bounded number of deterministic mutations of them.
//
//   homi_fuzz_replay [--iterations N] [--seed S] [--write-seeds DIR] [FILE|DIR ...]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
std::vector<std::vector<uint8_t>> homi_fuzz_seeds();

namespace {

std::vector<uint8_t> read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void run(const std::vector<uint8_t>& v) { LLVMFuzzerTestOneInput(v.data(), v.size()); }

// One mutation of the kind that finds decoder bugs: bit flips, interesting values in
// the length/count fields, truncation, extension, splices. Byte 0 (descriptor count)
// is mutated too. Packet offsets 9..12 hold the length field: sometimes fixed up so the
// mutation reaches the payload decoder.
std::vector<uint8_t> mutate(std::vector<uint8_t> v, const std::vector<std::vector<uint8_t>>& pool, std::mt19937_64& g) {
  auto pick = [&](size_t n) { return n ? size_t(g() % n) : 0; };
  int rounds = 1 + int(g() % 4);
  for (int r = 0; r < rounds; ++r) {
    switch (g() % 8) {
      case 0:
        if (!v.empty()) v[pick(v.size())] ^= uint8_t(1u << (g() % 8));
        break;
      case 1:
        if (!v.empty()) v[pick(v.size())] = uint8_t(g());
        break;
      case 2:
        if (v.size() >= 4) {
          static const uint32_t interesting[] = {0, 1, 0x7F, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF, 4096, 65536};
          uint32_t x = interesting[g() % std::size(interesting)];
          std::memcpy(&v[pick(v.size() - 3)], &x, 4);
        }
        break;
      case 3:
        v.resize(pick(v.size() + 1));
        break;
      case 4: {
        size_t n = 1 + g() % 64;
        size_t at = pick(v.size() + 1);
        std::vector<uint8_t> ins(n);
        for (auto& b : ins) b = uint8_t(g());
        v.insert(v.begin() + long(at), ins.begin(), ins.end());
        break;
      }
      case 5:
        if (v.size() > 1) {
          size_t a = pick(v.size()), n = 1 + pick(v.size() - a);
          v.erase(v.begin() + long(a), v.begin() + long(a + n));
        }
        break;
      case 6: {
        const auto& o = pool[pick(pool.size())];
        if (!o.empty()) {
          size_t a = pick(o.size());
          v.insert(v.begin() + long(pick(v.size() + 1)), o.begin() + long(a), o.end());
        }
        break;
      }
      case 7:
        if (!v.empty()) v[0] = uint8_t(g() % 3);
        break;
    }
  }
  if (v.size() >= 17 && g() % 2) {  // keep the length field consistent
    uint32_t len = uint32_t(v.size() - 17);
    std::memcpy(&v[9], &len, 4);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  long iterations = 10000;
  uint64_t seed = 1;
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--iterations" && i + 1 < argc) iterations = std::atol(argv[++i]);
    else if (a == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 0);
    else if (a == "--write-seeds" && i + 1 < argc) {
      std::string dir = argv[++i];
      std::filesystem::create_directories(dir);
      int k = 0;
      for (auto& s : homi_fuzz_seeds()) {
        std::ofstream out(dir + "/seed-" + std::to_string(k++), std::ios::binary);
        out.write(reinterpret_cast<const char*>(s.data()), std::streamsize(s.size()));
      }
      return 0;
    } else inputs.push_back(a);
  }
  auto pool = homi_fuzz_seeds();
  size_t replayed = 0;
  for (auto& in : inputs) {
    std::filesystem::path p(in);
    if (std::filesystem::is_directory(p)) {
      for (auto& e : std::filesystem::directory_iterator(p))
        if (e.is_regular_file()) {
          auto v = read_file(e.path());
          run(v);
          pool.push_back(std::move(v));
          ++replayed;
        }
    } else {
      auto v = read_file(p);
      run(v);
      pool.push_back(std::move(v));
      ++replayed;
    }
  }
  for (auto& s : homi_fuzz_seeds()) run(s);
  std::mt19937_64 g(seed);
  for (long i = 0; i < iterations; ++i) run(mutate(pool[g() % pool.size()], pool, g));
  std::printf("homi_fuzz_replay: %zu file(s), %zu seeds, %ld mutations: no crash\n", replayed, homi_fuzz_seeds().size(),
              iterations);
  return 0;
}
