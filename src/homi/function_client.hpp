// homic's side of hardware-assisted delegation: a virtual function granted by homid,
// with our whole driver running on it (bring-up, admin queue, I/O queues), exactly as
// on a function opened in-process, but with no root and no sysfs access needed for the
// BAR (homid passes its descriptor). DMA memory: hugepages with physical addresses
// when the VF is on uio (no IOMMU).
//
//   auto c = homic::Client::connect(sock);
//   auto vf = homic::GrantedFunction::grant(c, "pf0");   // any free VF of pf0
//   auto qp = vf->controller()->create_queue_pair({.depth = 64});
//   ...                                                  // destruction: shutdown + release
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "homi/client.hpp"
#include "nvme/controller.hpp"

namespace aisio::homic {

std::vector<wire::FunctionInfo> list_functions(Client& c);

class GrantedFunction {
 public:
  // Throws Error: homid's refusal (policy, none free) or the driver's bring-up failure
  // (the VF is then released again).
  static std::unique_ptr<GrantedFunction> grant(std::shared_ptr<Client> client, const std::string& pf = "",
                                                uint16_t vfn = 0, nvme::ControllerOptions opt = {});
  ~GrantedFunction();  // controller shutdown, then release_function (homid resets the VF)
  GrantedFunction(const GrantedFunction&) = delete;
  GrantedFunction& operator=(const GrantedFunction&) = delete;

  const wire::FunctionInfo& info() const { return info_; }
  const std::shared_ptr<nvme::Controller>& controller() const { return ctrl_; }

 private:
  GrantedFunction() = default;
  std::shared_ptr<Client> client_;
  wire::FunctionInfo info_;
  std::shared_ptr<nvme::Controller> ctrl_;
};

}  // namespace aisio::homic
