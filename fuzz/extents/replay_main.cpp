// Plain driver for the fuzz targets when clang's libFuzzer is not available (g++,
// ASan + UBSan): replays every corpus file, then runs bounded random mutations of
// them (bit flips, byte sets, chunk copies, truncation) through the same entry point.
//
//   xfs_fuzz_replay [--iterations N] [--seed S] [--max-len BYTES] CORPUS_DIR_OR_FILE...
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  uint64_t iterations = 1000, seed = 1;
  size_t max_len = 1 << 20;
  std::vector<std::vector<uint8_t>> corpus;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--iterations" && i + 1 < argc) iterations = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--max-len" && i + 1 < argc) max_len = std::strtoull(argv[++i], nullptr, 10);
    else {
      std::vector<std::filesystem::path> files;
      if (std::filesystem::is_directory(a)) {
        for (auto& e : std::filesystem::directory_iterator(a))
          if (e.is_regular_file()) files.push_back(e.path());
      } else {
        files.push_back(a);
      }
      std::sort(files.begin(), files.end());
      for (auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        std::vector<char> b((std::istreambuf_iterator<char>(in)), {});
        corpus.emplace_back(b.begin(), b.end());
      }
    }
  }
  if (corpus.empty()) corpus.push_back({});
  for (auto& c : corpus) LLVMFuzzerTestOneInput(c.data(), c.size());
  std::mt19937_64 rng(seed);
  for (uint64_t it = 0; it < iterations; ++it) {
    std::vector<uint8_t> d = corpus[rng() % corpus.size()];
    int edits = 1 + int(rng() % 8);
    for (int k = 0; k < edits && !d.empty(); ++k) {
      size_t at = rng() % d.size();
      switch (rng() % 6) {
        case 0: d[at] ^= uint8_t(1u << (rng() % 8)); break;
        case 1: d[at] = uint8_t(rng()); break;
        case 2: d[at] = (rng() & 1) ? 0xff : 0x00; break;
        case 3: {  // copy a few bytes from elsewhere
          size_t from = rng() % d.size(), n = 1 + rng() % 16;
          for (size_t j = 0; j < n && at + j < d.size() && from + j < d.size(); ++j) d[at + j] = d[from + j];
          break;
        }
        case 4:  // interesting integers
          if (at + 4 <= d.size()) {
            static const uint32_t vals[] = {0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xffff, 512, 4096};
            uint32_t v = vals[rng() % 8];
            std::memcpy(&d[at], &v, 4);
          }
          break;
        default:
          if (rng() % 8 == 0) d.resize(at);  // truncate now and then
      }
    }
    if (d.size() > max_len) d.resize(max_len);
    LLVMFuzzerTestOneInput(d.data(), d.size());
    if ((it + 1) % 1000 == 0) std::fprintf(stderr, "replay: %llu iterations\n", (unsigned long long)(it + 1));
  }
  std::fprintf(stderr, "replay: %zu corpus inputs + %llu mutations, no crash\n", corpus.size(),
               (unsigned long long)iterations);
  return 0;
}
