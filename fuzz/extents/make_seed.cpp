// Writes fuzz seeds.
//   make_seed xfs OUT_DIR IMAGE...   each image as a SparseImage, CRC checking on and off
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "extents/xfs.hpp"
#include "sparse_image.hpp"

namespace {
void put(const std::string& p, const std::vector<uint8_t>& b) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
  std::printf("%s: %zu bytes\n", p.c_str(), b.size());
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s xfs OUT_DIR IMAGE...\n", argv[0]);
    return 2;
  }
  std::string mode = argv[1], out = argv[2];
  if (mode != "xfs") {
    std::fprintf(stderr, "unknown seed kind '%s'\n", mode.c_str());
    return 2;
  }
  for (int i = 3; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "cannot open %s\n", argv[i]);
      return 1;
    }
    in.seekg(0, std::ios::end);
    std::vector<uint8_t> img(size_t(in.tellg()));
    in.seekg(0);
    in.read(reinterpret_cast<char*>(img.data()), std::streamsize(img.size()));
    std::string base = argv[i];
    base = base.substr(base.find_last_of('/') + 1);
    // Leave the internal log out: the decoder does not read it.
    uint64_t log_begin = 0, log_end = 0;
    try {
      auto fs = aisio::extents::xfs::Filesystem::open(argv[i]);
      const auto& sb = fs->superblock();
      if (sb.log_start) {
        log_begin = fs->fsblock_to_byte(sb.log_start);
        log_end = log_begin + (uint64_t(sb.log_blocks) << sb.block_log);
      }
    } catch (const aisio::Error& e) {
      std::fprintf(stderr, "%s: %s (keeping the whole image)\n", argv[i], e.what());
    }
    for (bool crc : {true, false})
      put(out + "/" + base + (crc ? ".crc" : ".nocrc") + ".xfz",
          aisio::fuzz::SparseImage::encode(img, crc, log_begin, log_end));
  }
  return 0;
}
