#include "homi/function_client.hpp"

#include <sys/mman.h>

#include "memory/hugepage_backend.hpp"
#include "pcie/mmio.hpp"

namespace aisio::homic {

namespace {

// BAR0 of a granted VF, mapped from the descriptor homid passed.
class GrantedBar final : public MmioWindow {
 public:
  static std::shared_ptr<GrantedBar> map(int fd, uint64_t offset, uint64_t size, std::string what) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off_t(offset));
    if (p == MAP_FAILED) throw_errno("mmap BAR0 of " + what);
    return std::shared_ptr<GrantedBar>(new GrantedBar(static_cast<uint8_t*>(p), size, std::move(what)));
  }
  ~GrantedBar() override { munmap(base_, size_); }
  std::string describe() const override { return what_; }

 private:
  GrantedBar(uint8_t* base, size_t size, std::string what) : MmioWindow(base, size), what_(std::move(what)) {}
  std::string what_;
};

}  // namespace

std::vector<wire::FunctionInfo> list_functions(Client& c) {
  Reply r = c.request(wire::ListFunctions{});
  return std::get<wire::ListFunctionsOk>(r.msg.body).functions;
}

std::unique_ptr<GrantedFunction> GrantedFunction::grant(std::shared_ptr<Client> client, const std::string& pf,
                                                        uint16_t vfn, nvme::ControllerOptions opt) {
  Reply r = client->request(wire::GrantFunction{pf, vfn});
  auto ok = std::get<wire::GrantFunctionOk>(r.msg.body);
  // From here on, a failure destroys g, which releases the VF again.
  std::unique_ptr<GrantedFunction> g(new GrantedFunction);
  g->client_ = client;
  g->info_ = ok.function;
  if (ok.function.driver != uint8_t(wire::Kind::pci_uio))
    throw Error(Errc::not_supported, "granted VF " + ok.function.address + " is not on uio_pci_generic");
  auto bar = GrantedBar::map(r.fd.get(), ok.bar_offset, ok.bar_size,
                             ok.function.address + " BAR0 (VF " + std::to_string(ok.function.vfn) + " via homid)");
  r.fd.reset();  // the mapping keeps the BAR reachable
  auto dma = DmaHeap::create(std::make_unique<HugepageBackend>(), 4u << 20);
  g->ctrl_ = nvme::Controller::create(bar, dma, opt);
  return g;
}

GrantedFunction::~GrantedFunction() {
  if (!client_) return;
  if (ctrl_) {
    try {
      ctrl_->shutdown();
    } catch (const std::exception&) {
      // homid resets the VF anyway
    }
    ctrl_.reset();
  }
  try {
    client_->request(wire::ReleaseFunction{info_.pf, info_.vfn});
  } catch (const std::exception&) {
    // A closed connection releases it too.
  }
}

}  // namespace aisio::homic
