// Opens a controller by handle (default: a software NVMe controller inside this process),
// writes one block, reads it back, compares, and prints the controller's model.
//   aisio_example [HANDLE]      exit 0 when the block read back is the block written
#include <aisio/target/target.hpp>
#include <aisio/version.hpp>

#include <cstdio>
#include <cstring>
#include <exception>

int main(int argc, char** argv) {
  const char* handle = argc > 1 ? argv[1] : "embedded";
  try {
    auto target = aisio::target::open(handle);
    auto ns = target->ns(1);
    auto qp = target->create_queue_pair({.depth = 8}, ns.nsid);
    auto out = target->dma()->alloc(ns.lba_size);
    auto in = target->dma()->alloc(ns.lba_size);
    for (uint32_t i = 0; i < ns.lba_size; ++i) out.data()[i] = uint8_t(i * 7 + 1);
    std::memset(in.data(), 0, ns.lba_size);

    uint64_t lba = ns.blocks - 1;  // the last block of the namespace
    if (auto c = qp->write(ns.nsid, lba, 1, out); !c.ok()) {
      std::fprintf(stderr, "write LBA %llu: %s\n", (unsigned long long)lba, c.describe().c_str());
      return 1;
    }
    if (auto c = qp->read(ns.nsid, lba, 1, in); !c.ok()) {
      std::fprintf(stderr, "read LBA %llu: %s\n", (unsigned long long)lba, c.describe().c_str());
      return 1;
    }
    if (std::memcmp(in.data(), out.data(), ns.lba_size) != 0) {
      std::fprintf(stderr, "LBA %llu read back differs from what was written\n", (unsigned long long)lba);
      return 1;
    }
    std::printf("model: %s\n", target->model().c_str());
    std::printf("namespace %u: %llu blocks of %u bytes; LBA %llu written and read back\n", ns.nsid,
                (unsigned long long)ns.blocks, ns.lba_size, (unsigned long long)lba);
    std::printf("aisio headers %s, libaisio %s\n", aisio::kVersion, aisio::library_version());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "aisio_example %s: %s\n", handle, e.what());
    return 1;
  }
  return 0;
}
