#include "fil/homid.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include "common/error.hpp"

#if AISIO_FIL_HOMIC
#include "homi/client.hpp"
#include "homi/function_client.hpp"
#endif

namespace aisio::fil {

#if AISIO_FIL_HOMIC

bool homid_built() { return true; }
std::string homid_default_socket() { return homic::default_socket(); }

namespace {

class HomidExtents final : public io::ExtentSource {
 public:
  static constexpr uint32_t ANY_CTRL = UINT32_MAX;  // a VF's PF: homid numbers it
  HomidExtents(std::shared_ptr<homic::Client> c, std::string root, uint32_t nsid, uint32_t ctrl)
      : c_(std::move(c)), root_(std::move(root)), nsid_(nsid), ctrl_(ctrl) {}
  io::ResolvedFile resolve(const std::string& rel) override {
    std::string p = root_.empty() ? rel : (root_.back() == '/' ? root_ + rel : root_ + "/" + rel);
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_errno("open " + p);
    homi::wire::ResolveExtentsOk ok;
    try {
      ok = c_->resolve_all_extents(fd);
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);
    if ((ctrl_ != ANY_CTRL && ok.ctrl != ctrl_) || ok.nsid != nsid_)
      throw Error(Errc::invalid_argument, fmt::format("homid: {} is on controller {} namespace {}, not {} / {}", p,
                                                      ok.ctrl, ok.nsid, ctrl_, nsid_));
    io::ResolvedFile rf;
    rf.size = ok.file_size;
    for (const auto& e : ok.extents) rf.extents.push_back({e.logical, e.physical, e.length, e.flags});
    return rf;
  }
  std::string name() const override { return "homid"; }
  std::string describe() const override {
    return fmt::format("homid resolve_extents (FIEMAP in the daemon) under {}", root_);
  }

 private:
  std::shared_ptr<homic::Client> c_;
  std::string root_;
  uint32_t nsid_, ctrl_;
};

class Link final : public HomidLink {
 public:
  explicit Link(std::shared_ptr<homic::Session> s, std::string socket)
      : s_(std::move(s)), socket_(std::move(socket)) {}
  io::NvmeAccess access(uint32_t nsid) override {
    io::NvmeAccess a;
    a.describe = describe();
    a.nsid = nsid;
    a.lba_size = s_->lba_size(nsid);
    if (!a.lba_size)
      throw Error(Errc::invalid_argument, fmt::format("homid: namespace {} is not active on {}", nsid, describe()));
    a.ns_bytes = s_->nsze(nsid) * a.lba_size;
    a.dma = s_->dma();
    a.max_queue_entries = std::max<uint32_t>(2, s_->max_queue_depth());
    a.make_queue_pair = [s = s_, nsid](const nvme::QueueOptions& o) { return s->create_queue_pair(o, nsid); };
    a.keep = s_;
    return a;
  }
  std::shared_ptr<io::ExtentSource> extents(const std::string& root, uint32_t nsid) override {
    return std::make_shared<HomidExtents>(s_->client(), root, nsid, s_->index());
  }
  std::string describe() const override { return fmt::format("homid:{} controller '{}'", socket_, s_->info().name); }

 private:
  std::shared_ptr<homic::Session> s_;
  std::string socket_;
};

// A VF granted by homid: this process runs the whole driver on it; extents still come
// from homid (the PF's file system), valid on the VF (same namespace, same LBAs).
class VfLink final : public HomidLink {
 public:
  VfLink(std::shared_ptr<homic::Client> c, std::shared_ptr<homic::GrantedFunction> vf, std::string socket)
      : c_(std::move(c)), vf_(std::move(vf)), socket_(std::move(socket)) {}
  io::NvmeAccess access(uint32_t nsid) override {
    io::NvmeAccess a = io::access_of(vf_->controller(), nsid);
    a.describe = describe();
    a.keep = std::make_shared<std::pair<std::shared_ptr<void>, std::shared_ptr<void>>>(a.keep, vf_);
    return a;
  }
  std::shared_ptr<io::ExtentSource> extents(const std::string& root, uint32_t nsid) override {
    return std::make_shared<HomidExtents>(c_, root, nsid, HomidExtents::ANY_CTRL);
  }
  std::string describe() const override {
    return fmt::format("homid:{} VF {} ({}) of '{}'", socket_, vf_->info().vfn, vf_->info().address, vf_->info().pf);
  }

 private:
  std::shared_ptr<homic::Client> c_;
  std::shared_ptr<homic::GrantedFunction> vf_;
  std::string socket_;
};

}  // namespace

std::shared_ptr<HomidLink> HomidLink::open(const std::string& socket, const std::string& controller,
                                           const std::string& function) {
  std::string sock = socket.empty() ? homic::default_socket() : socket;
  homic::ConnectOptions co;
  co.name = "aisio fil";
  auto client = homic::Client::connect(sock, co);
  if (function == "vf") {
    std::shared_ptr<homic::GrantedFunction> vf =
        homic::GrantedFunction::grant(client, controller == "0" ? "" : controller);
    return std::make_shared<VfLink>(client, std::move(vf), sock);
  }
  if (!function.empty() && function != "queue")
    throw Error(Errc::invalid_argument, "--function '" + function + "': queue (default) or vf");
  auto s = homic::Session::open(client, controller.empty() ? "0" : controller);
  return std::make_shared<Link>(std::move(s), sock);
}

#else

bool homid_built() { return false; }
std::string homid_default_socket() { return "/run/homid/homid.sock"; }
std::shared_ptr<HomidLink> HomidLink::open(const std::string&, const std::string&, const std::string&) {
  throw Error(Errc::not_supported, "--via homid: not built (src/homi's client library aisio_homic is missing)");
}

#endif

}  // namespace aisio::fil
