// libFuzzer target for the XFS on-disk decoder. Input: a SparseImage (see
// sparse_image.hpp) or, failing that, raw image bytes. Decodes everything it can
// reach with a bounded budget; aisio::Error is the only acceptable failure.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "common/error.hpp"
#include "extents/block_reader.hpp"
#include "extents/xfs.hpp"
#include "sparse_image.hpp"

namespace X = aisio::extents::xfs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::shared_ptr<aisio::extents::BlockReader> dev;
  bool crc = true;
  auto sparse = std::make_shared<aisio::fuzz::SparseImage>();
  if (sparse->parse(data, size)) {
    crc = sparse->verify_crc();
    dev = sparse;
  } else {
    dev = std::make_shared<aisio::extents::MemoryBlockReader>(std::span<const uint8_t>(data, size));
  }
  try {
    X::Filesystem fs(dev, X::Options{crc});
    try {
      X::scan(fs, {.max_entries = 3000, .max_lookups_per_dir = 64, .read_bytes = 65536});
    } catch (const aisio::Error&) {
    }
    for (const char* p : {"/", "/dir_sf/child/leaf", "/sl", "/dir_node/n7", "/link_dir/b", "/nope/x"}) {
      try {
        uint64_t ino = fs.resolve(p);
        (void)fs.extents(ino, true);
      } catch (const aisio::Error&) {
      }
    }
    size_t n = 0;
    for (const auto& e : fs.list(fs.root())) {
      if (++n > 64) break;
      try {
        (void)fs.bmap(e.ino);
        (void)fs.lookup(fs.root(), e.name);
        if (fs.inode(e.ino).is_dir()) (void)fs.parent(e.ino);
      } catch (const aisio::Error&) {
      }
    }
  } catch (const aisio::Error&) {
  }
  return 0;
}
