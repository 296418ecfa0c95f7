// cuFile (NVIDIA GPUDirect Storage) through dlopen of libcufile from the CUDA toolkit:
// nothing links it, so aisio builds and runs where it is absent. Without the
// nvidia-fs kernel module cuFile runs in compatibility mode (POSIX reads into a bounce
// buffer, then a copy to the GPU); we force that mode explicitly
// (CUFILE_FORCE_COMPAT_MODE) when /proc/driver/nvidia-fs is missing, and report it.
#pragma once
#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>

#include "common/fd.hpp"

namespace aisio::gpu {

class CuFile {
 public:
  // Loads libcufile and opens its driver; Errc::not_supported with the reason otherwise.
  static std::shared_ptr<CuFile> open();
  ~CuFile();
  std::string describe() const { return describe_; }

  // One registered file: reads land in GPU memory.
  class File {
   public:
    File(CuFile& lib, const std::string& path);
    ~File();
    File(const File&) = delete;
    File& operator=(const File&) = delete;
    // Reads n bytes at file offset `off` to dev + dev_off; returns bytes read or throws.
    size_t read(void* dev_base, size_t n, off_t off, off_t dev_off);

   private:
    CuFile& lib_;
    Fd fd_;
    void* handle_ = nullptr;
    std::string path_;
  };
  // Registering the destination buffer is optional (and recommended).
  void register_buffer(void* dev, size_t n);
  void deregister_buffer(void* dev);

 private:
  CuFile() = default;
  struct Api;
  std::unique_ptr<Api> api_;
  void* dl_ = nullptr;
  bool compat_ = false;
  std::string describe_;
};

}  // namespace aisio::gpu
