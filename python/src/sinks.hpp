// Where a FileReader's bytes go (io/engine.hpp FileSink): straight into the caller's
// memory, host or GPU. Private to the Python module.
#pragma once
#include <cstring>
#include <string>

#include "file.hpp"
#include "gpu_copy.hpp"
#include "io/engine.hpp"

namespace aisio::py {

inline void deposit(const Dest& d, uint64_t at, const uint8_t* p, size_t n) {
  if (d.gpu) gpu::copy_to_device(d.p + at, p, n, d.device);
  else std::memcpy(d.p + at, p, n);
}

// One range of one file (a pread): file byte `base` lands at d.p[0].
class RangeSink final : public io::FileSink {
 public:
  RangeSink(const Dest& d, uint64_t base) : d_(d), base_(base) {}
  void begin(const io::FileTask&, uint64_t) override {}
  void data(const io::FileTask& f, uint64_t off, const uint8_t* p, size_t n) override {
    if (off < base_ || off - base_ + n > d_.n) {
      error = f.rel + ": the reader delivered bytes outside the range asked for";
      return;
    }
    try {
      deposit(d_, off - base_, p, n);
    } catch (const std::exception& e) {
      if (error.empty()) error = e.what();
      return;
    }
    got += n;
  }
  void end(const io::FileTask&, const std::string& e) override {
    if (!e.empty() && error.empty()) error = e;
  }
  uint64_t got = 0;
  std::string error;

 private:
  Dest d_;
  uint64_t base_;
};

}  // namespace aisio::py
