// libFuzzer target for the shareable extent index parser (what a client maps from a
// daemon's memfd): validation must reject anything inconsistent without crashing.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/error.hpp"
#include "extents/index.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint64_t> aligned((size + 7) / 8);
  if (size) std::memcpy(aligned.data(), data, size);
  try {
    aisio::extents::IndexView v({reinterpret_cast<const uint8_t*>(aligned.data()), size});
    for (size_t i = 0; i < v.size(); ++i) {
      auto f = v.file(i);
      (void)f.to_extents();
      (void)v.find(f.path);
      (void)v.find(f.rec->dev, f.rec->ino);
    }
  } catch (const aisio::Error&) {
  }
  return 0;
}
