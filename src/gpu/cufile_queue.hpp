// Backend cufile: NVIDIA GPUDirect Storage (cufile.hpp). A request reads a whole file of
// the mounted data set to a byte offset of one registered GPU buffer; cuFileRead is
// synchronous, so as with psync the read happens in submit() and reap() hands over its
// result (one request in flight).
#pragma once
#include <cstdint>
#include <exception>
#include <memory>
#include <string>

#include "backends/sync_queue.hpp"
#include "gpu/cufile.hpp"

namespace aisio::gpu {

struct CufileRequest {
  std::string path;  // the file, as this process sees it
  uint64_t len = 0;  // bytes to read (from offset 0)
  uint64_t dst = 0;  // byte offset in the buffer
};
struct CufileResult {
  uint64_t bytes = 0;
  std::string error;  // empty: bytes were read (fewer than len at EOF)
};

class CufileQueue : public backends::SyncCompletion<CufileRequest, CufileResult> {
 public:
  using Request = CufileRequest;
  using Result = CufileResult;

  CufileQueue(std::shared_ptr<CuFile> lib, void* base) : lib_(std::move(lib)), base_(base) {}

  template <class H>
  bool submit(Request& r) {
    Result res;
    try {
      CuFile::File f(*lib_, r.path);
      res.bytes = f.read(base_, r.len, 0, off_t(r.dst));
    } catch (const std::exception& e) {
      res.error = e.what();
    }
    complete(r, std::move(res));
    return true;
  }
  uint32_t capacity() const { return 1; }

 private:
  std::shared_ptr<CuFile> lib_;
  void* base_;
};

}  // namespace aisio::gpu
