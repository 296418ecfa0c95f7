#include "fil/homid.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "homi/client.hpp"

namespace aisio::fil {

namespace {

class HomidExtents final : public io::ExtentSource {
 public:
  HomidExtents(std::shared_ptr<homic::Client> c, std::string root, uint32_t nsid, uint32_t ctrl)
      : c_(std::move(c)), root_(std::move(root)), nsid_(nsid), ctrl_(ctrl) {}
  io::ResolvedFile resolve(const std::string& rel) override {
    std::string p = root_.empty() ? rel : (root_.back() == '/' ? root_ + rel : root_ + "/" + rel);
    const Fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw_errno("open " + p);
    const homi::wire::ResolveExtentsOk ok = c_->resolve_all_extents(fd.get());
    if ((ctrl_ != target::HomidRef::kAnyController && ok.ctrl != ctrl_) || ok.nsid != nsid_)
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

}  // namespace

std::shared_ptr<io::ExtentSource> homid_extents(target::HomidRef ref, std::string root, uint32_t nsid) {
  return std::make_shared<HomidExtents>(std::move(ref.client), std::move(root), nsid, ref.controller);
}

}  // namespace aisio::fil
