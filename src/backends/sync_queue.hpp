// The completion side of a backend whose I/O is done inside submit() (psync, cuFile):
// one request in flight; reap() hands its result to the handler.
#pragma once
#include <cstdint>
#include <utility>

namespace aisio::backends {

template <class Req, class Res>
class SyncCompletion {
 public:
  int flush() { return 0; }
  template <class H>
  unsigned reap() {
    if (!done_) return 0;
    Req* r = done_;
    done_ = nullptr;
    H::done(*r, res_);
    return 1;
  }
  uint32_t in_flight() const { return done_ ? 1 : 0; }

 protected:
  void complete(Req& r, Res res) {
    res_ = std::move(res);
    done_ = &r;
  }

 private:
  Req* done_ = nullptr;
  Res res_{};
};

}  // namespace aisio::backends
