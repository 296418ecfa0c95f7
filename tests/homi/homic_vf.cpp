// homic-vf: a homid client that takes an SR-IOV virtual function (grant_function) and
// runs the whole driver on it. Used by the QEMU testbed suite testbed/suites/sriov.sh.
//
//   homic-vf --socket S --verify DIR [--rounds N]   # every file under DIR: extents from
//                                                    # homid (resolve_extents), bytes read
//                                                    # through the VF == bytes read(2) gives
//   homic-vf --socket S --hold                      # grant, print READY, wait to be killed
//   homic-vf --socket S --write-lba L --blocks N --seed X --out F
//                                                    # raw write through the VF; F gets the
//                                                    # bytes written, to compare with the PF
//   homic-vf --socket S --list                      # the functions homid manages
//   --uid N: run as uid/gid N (drops root first; for the policy-refusal test)
// Exit status 0: everything verified.
#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <filesystem>
#include <vector>

#include "common/error.hpp"
#include "extents/extent.hpp"
#include "homi/client.hpp"
#include "homi/function_client.hpp"

using namespace aisio;

namespace {

// Reads [off, off + len) of the namespace through the VF into out.
void read_ns(nvme::QueuePair& qp, DmaBuffer& buf, uint32_t nsid, uint32_t lba, uint64_t off, uint64_t len,
             uint8_t* out) {
  const uint64_t chunk = buf.size();
  while (len) {
    uint64_t first = off / lba * lba, skip = off - first;
    uint64_t n = std::min<uint64_t>(len, chunk - skip);
    uint64_t span = (skip + n + lba - 1) / lba * lba;
    nvme::Completion c = qp.read(nsid, first / lba, uint32_t(span / lba), buf);
    if (!c.ok()) throw Error(Errc::io, fmt::format("read LBA {} through the VF: {}", first / lba, c.describe()));
    std::memcpy(out, buf.data() + skip, n);
    out += n;
    off += n;
    len -= n;
  }
}

// One file: its extents from homid, each read through the VF, compared with read(2).
uint64_t verify_file(homic::Client& cl, nvme::QueuePair& qp, DmaBuffer& buf, const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("open " + path);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  homi::wire::ResolveExtentsOk x = cl.resolve_all_extents(fd);
  std::vector<uint8_t> want(x.file_size), got(x.file_size, 0);
  size_t done = 0;
  while (done < want.size()) {
    ssize_t n = pread(fd, want.data() + done, want.size() - done, off_t(done));
    if (n <= 0) throw_errno("pread " + path);
    done += size_t(n);
  }
  for (auto& e : x.extents) {
    if (e.logical >= x.file_size) continue;
    uint64_t len = std::min<uint64_t>(e.length, x.file_size - e.logical);
    if (e.flags & (extents::kExtHole | extents::kExtUnwritten)) continue;  // zeros in `got` already
    if (e.flags & (extents::kExtInline | extents::kExtEncoded | extents::kExtDelalloc | extents::kExtUnknown))
      throw Error(Errc::io, fmt::format("{}: extent at {} has no plain device location (flags {:#x})", path,
                                        e.logical, e.flags));
    read_ns(qp, buf, x.nsid, x.lba_size, e.physical, len, got.data() + e.logical);
  }
  if (got != want) {
    size_t i = 0;
    while (got[i] == want[i]) ++i;
    throw Error(Errc::io, fmt::format("{}: byte {} read through the VF is {:#04x}, the kernel says {:#04x}", path, i,
                                      got[i], want[i]));
  }
  return x.file_size;
}

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  return x ^ (x >> 31);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"homid client on a granted SR-IOV virtual function"};
  std::string socket = homic::default_socket(), pf, verify, out;
  uint16_t vfn = 0;
  unsigned rounds = 1;
  bool hold = false, list = false;
  uint64_t write_lba = UINT64_MAX, seed = 1;
  uint32_t blocks = 0;
  app.add_option("--socket", socket);
  app.add_option("--pf", pf, "sriov-pf controller name (default: any)");
  app.add_option("--vfn", vfn, "a particular VF (default: any free)");
  app.add_option("--verify", verify, "verify every file under this directory");
  app.add_option("--rounds", rounds);
  app.add_flag("--hold", hold);
  app.add_flag("--list", list);
  app.add_option("--write-lba", write_lba);
  app.add_option("--blocks", blocks);
  app.add_option("--seed", seed);
  app.add_option("--out", out);
  int64_t uid = -1;
  app.add_option("--uid", uid, "drop to this uid and gid before connecting");
  CLI11_PARSE(app, argc, argv);
  try {
    if (uid >= 0 && (setgroups(0, nullptr) != 0 || setgid(gid_t(uid)) != 0 || setuid(uid_t(uid)) != 0))
      throw_errno("dropping to uid " + std::to_string(uid));
    auto cl = homic::Client::connect(socket, {"homic-vf"});
    if (list) {
      for (auto& f : homic::list_functions(*cl))
        fmt::print("{} VF {} {} scid {} {} vq {} vi {} holder {} grants {}\n", f.pf, f.vfn, f.address, f.scid,
                   f.online ? "online" : "offline", f.vq, f.vi, f.holder, f.grants);
      return 0;
    }
    auto vf = homic::GrantedFunction::grant(cl, pf, vfn);
    auto& ctrl = *vf->controller();
    fmt::print("granted VF {} ({}) of {}: cntlid {}, {} namespace(s), {} I/O queue pairs\n", vf->info().vfn,
               vf->info().address, vf->info().pf, ctrl.id().cntlid, ctrl.namespaces().size(), ctrl.io_queue_limit());
    std::fflush(stdout);
    auto qp = ctrl.create_queue_pair({.depth = 32});
    size_t chunk = ctrl.mdts_bytes() ? std::min<size_t>(ctrl.mdts_bytes(), 256 << 10) : 256 << 10;
    DmaBuffer buf = ctrl.dma()->alloc(chunk, 4096);
    if (hold) {
      fmt::print("READY\n");
      std::fflush(stdout);
      for (;;) pause();
    }
    if (write_lba != UINT64_MAX) {
      uint32_t lba = ctrl.ns(1).lba_size;
      if (!blocks || uint64_t(blocks) * lba > chunk) throw Error(Errc::invalid_argument, "--blocks out of range");
      std::vector<uint8_t> data(size_t(blocks) * lba);
      for (size_t i = 0; i < data.size(); i += 8) {
        uint64_t v = mix(seed * 1000003 + i);
        std::memcpy(data.data() + i, &v, 8);
      }
      std::memcpy(buf.data(), data.data(), data.size());
      nvme::Completion c = qp->write(1, write_lba, blocks, buf);
      if (!c.ok()) throw Error(Errc::io, "write through the VF: " + c.describe());
      c = qp->execute(nvme::cmd::flush(1));
      if (!c.ok()) throw Error(Errc::io, "flush through the VF: " + c.describe());
      int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0 || write(fd, data.data(), data.size()) != ssize_t(data.size())) throw_errno("write " + out);
      ::close(fd);
      fmt::print("wrote {} blocks at LBA {} through VF {}\n", blocks, write_lba, vf->info().vfn);
    }
    if (!verify.empty()) {
      for (unsigned r = 0; r < rounds; ++r) {
        uint64_t files = 0, bytes = 0;
        for (auto& e : std::filesystem::recursive_directory_iterator(verify)) {
          if (!e.is_regular_file()) continue;
          bytes += verify_file(*cl, *qp, buf, e.path().string());
          ++files;
        }
        fmt::print("VF {}: round {}: {} files, {} bytes verified\n", vf->info().vfn, r + 1, files, bytes);
        std::fflush(stdout);
      }
    }
    qp.reset();
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "homic-vf: {}\n", e.what());
    return 1;
  }
}
