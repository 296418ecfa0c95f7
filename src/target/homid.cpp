// homid[:SOCKET][/CONTROLLER]: queue pairs and DMA memory granted by the HOMI daemon.
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>

#include "common/error.hpp"
#include "homi/client.hpp"
#include "homi/function_client.hpp"
#include "target/local.hpp"
#include "target/open.hpp"

namespace aisio::target {

namespace {

class HomidTarget final : public Target {
 public:
  HomidTarget(std::shared_ptr<homic::Session> s, std::string socket)
      : s_(std::move(s)), describe_(fmt::format("homid:{} controller '{}'", socket, s_->info().name)) {}

  std::string describe() const override { return describe_; }
  std::string model() const override { return "homid controller '" + s_->info().name + "'"; }
  NamespaceGeometry ns(uint32_t nsid) const override {
    uint32_t lba = s_->lba_size(nsid);
    if (!lba) throw Error(Errc::invalid_argument, fmt::format("namespace {} is not active on {}", nsid, describe_));
    return {nsid, lba, s_->nsze(nsid)};
  }
  std::unique_ptr<nvme::QueuePair> create_queue_pair(const nvme::QueueOptions& o, uint32_t nsid) override {
    return s_->create_queue_pair(o, nsid);
  }
  const std::shared_ptr<DmaHeap>& dma() const override { return s_->dma(); }
  uint32_t max_queue_entries() const override { return std::max<uint32_t>(2, s_->max_queue_depth()); }
  uint32_t page_size() const override { return s_->page_size(); }
  size_t max_transfer() const override { return s_->mdts_bytes(); }
  HomidRef homid() const override { return {s_->client(), s_->index()}; }

 private:
  std::shared_ptr<homic::Session> s_;
  std::string describe_;
};

bool is_socket(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

}  // namespace

std::shared_ptr<Target> open_homid(std::string_view rest, const OpenOptions& o, bool vf) {
  // rest: "" | ":SOCKET" | ":SOCKET/CONTROLLER" | "/CONTROLLER". A socket path has
  // slashes too: the whole of it is the socket when such a socket exists, else the
  // part after the last '/' names the controller.
  std::string socket, controller;
  if (rest.starts_with(':')) {
    socket = std::string(rest.substr(1));
    if (!is_socket(socket)) {
      auto slash = socket.rfind('/');
      if (slash != std::string::npos && slash + 1 < socket.size() && is_socket(socket.substr(0, slash))) {
        controller = socket.substr(slash + 1);
        socket.resize(slash);
      }
    }
  } else if (rest.starts_with('/') && rest.size() > 1) {
    controller = std::string(rest.substr(1));
  } else if (!rest.empty()) {
    throw Error(Errc::invalid_argument, "homid handle: use homid[:SOCKET][/CONTROLLER] or homid-vf[:SOCKET][/PF]");
  }
  if (socket.empty()) socket = homic::default_socket();
  homic::ConnectOptions co;
  co.name = o.client_name;
  auto client = homic::Client::connect(socket, co);
  if (!vf) return std::make_shared<HomidTarget>(homic::Session::open(client, controller.empty() ? "0" : controller), socket);
  // The VF is ours whole: the driver runs here on its BAR0; homid resets it when we let go
  // (GrantedFunction's destructor, after the controller has shut down).
  std::shared_ptr<homic::GrantedFunction> fn = homic::GrantedFunction::grant(client, controller == "0" ? "" : controller);
  auto ctrl = fn->controller();
  auto describe = fmt::format("homid-vf:{} VF {} ({}) of '{}'", socket, fn->info().vfn, fn->info().address, fn->info().pf);
  return std::make_shared<LocalTarget>(std::move(ctrl), std::move(describe), std::move(fn), nullptr,
                                       HomidRef{client, HomidRef::kAnyController});
}

}  // namespace aisio::target
