// aisio.Controller: one controller opened from a handle (target::open), with Identify
// data and raw block I/O. Block I/O runs without the GIL on a queue pair leased from a
// small pool, so Python threads reading at once use queue pairs of their own.
#pragma once
#include <pybind11/pybind11.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "memory/dma.hpp"
#include "nvme/queue_pair.hpp"
#include "target/target.hpp"

namespace aisio::py {

class Controller {
 public:
  Controller(const std::string& handle, const target::OpenOptions& o);
  ~Controller();
  const std::shared_ptr<target::Target>& target() const { return t_; }
  const std::string& handle() const { return handle_; }

  pybind11::dict identify() const;
  pybind11::list namespaces() const;
  // nlb blocks at slba of nsid into/from host memory p (n bytes available). No GIL.
  void read(uint32_t nsid, uint64_t slba, uint32_t nlb, uint8_t* p, size_t n);
  void write(uint32_t nsid, uint64_t slba, const uint8_t* p, size_t n);
  void close();

 private:
  struct Lane {  // a queue pair and its bounce buffer
    std::shared_ptr<target::Target> t;  // outlives the queue pair (declared first)
    uint32_t nsid = 0;
    std::unique_ptr<nvme::QueuePair> qp;
    DmaBuffer buf;
  };
  std::unique_ptr<Lane> lease(uint32_t nsid);
  void give_back(std::unique_ptr<Lane> l);
  std::shared_ptr<target::Target> live() const;

  std::string handle_;
  std::shared_ptr<target::Target> t_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Lane>> idle_;
};

void register_controller(pybind11::module_& m);

}  // namespace aisio::py
