// In-guest tests of the NVMe driver (src/nvme) on QEMU's controller through the real
// PCIe layer: bring-up, identify, data integrity with random LBAs and lengths beyond
// MDTS, and the byte-for-byte cross-check against the kernel's nvme driver.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <thread>

#include "common/error.hpp"
#include "guest_util.hpp"
#include "nvme/controller.hpp"
#include "pcie/device.hpp"
#include "pcie/sysfs.hpp"

using namespace aisio;
using namespace aisio::guest;

namespace {

struct Opened {
  pcie::UserDevice dev;
  std::shared_ptr<nvme::Controller> ctrl;
};

// Binds to the user-space driver that fits (vfio with an IOMMU group, else uio) and
// brings the controller up.
Opened open_ctrl(const std::string& bdf) {
  Opened o;
  pcie::OpenOptions opt;
  opt.bind = true;
  opt.dma_grow_bytes = 16u << 20;
  o.dev = pcie::open_device(bdf, opt);
  nvme::ControllerOptions co;
  co.io_queues = 4;
  o.ctrl = nvme::Controller::create(o.dev.bar0, o.dev.dma, co);
  return o;
}

uint64_t seed_from_env(uint64_t dflt) {
  const char* s = std::getenv("AISIO_SEED");
  return s ? std::strtoull(s, nullptr, 0) : dflt;
}

struct ExpectNs {
  uint32_t nsid, lba;
  uint64_t bytes;
};
std::vector<ExpectNs> expected_namespaces() {
  std::string c = config();
  if (c == "lba4k") return {{1, 4096, 256u << 20}};
  if (c == "twons") return {{1, 512, 128u << 20}, {2, 4096, 128u << 20}};
  if (c == "multi") return {{1, 512, 128u << 20}};
  return {{1, 512, 256u << 20}};
}

// Random writes and reads of [1, max_bytes] at random LBAs of the first `region` bytes
// of a namespace, verified against a per-block record of the last write.
void integrity(nvme::Controller& c, uint32_t nsid, uint64_t seed, int ops, size_t max_bytes, size_t region_bytes) {
  const auto& ns = c.ns(nsid);
  const uint32_t lba = ns.lba_size;
  uint64_t region = std::min<uint64_t>(ns.nsze, region_bytes / lba);
  auto qp = c.create_queue_pair(nvme::QueueOptions{.depth = 64});
  const uint32_t max_blocks = uint32_t(std::max<size_t>(1, max_bytes / lba));
  // 3 MiB+: a buffer this size always spans a 2 MiB (hugepage) boundary.
  size_t buf_bytes = std::max<size_t>(size_t(max_blocks) * lba + 8192, 3u << 20);
  DmaBuffer wbuf = c.dma()->alloc(buf_bytes, 4096), rbuf = c.dma()->alloc(buf_bytes, 4096);
  std::map<uint64_t, uint64_t> last;  // LBA -> write id (seed of its pattern)
  std::mt19937_64 rng(seed);
  uint64_t bytes = 0;
  int beyond_mdts = 0;
  for (int i = 0; i < ops; ++i) {
    uint32_t nlb = uint32_t(1 + rng() % max_blocks);
    if (i % 7 == 0) nlb = max_blocks;  // the largest size, beyond MDTS, regularly
    uint64_t slba = rng() % (region - nlb + 1);
    size_t off = (i % 3 == 0) ? 4 * (rng() % 1024) : 0;  // dword-aligned offsets: PRP1 with an offset
    size_t len = size_t(nlb) * lba;
    if (c.mdts_bytes() && len > c.mdts_bytes()) ++beyond_mdts;
    uint64_t wid = (seed << 20) + uint64_t(i) + 1;
    fill_pattern(wbuf.data() + off, len, wid, slba * lba);  // pattern keyed by LBA
    auto wc = qp->write(nsid, slba, nlb, wbuf, off);
    ASSERT_TRUE(wc.ok()) << "write slba " << slba << " nlb " << nlb << ": " << wc.describe();
    for (uint32_t b = 0; b < nlb; ++b) last[slba + b] = wid;
    bytes += len;
    if (rng() % 2) {
      std::memset(rbuf.data() + off, 0xA5, len);
      auto rc = qp->read(nsid, slba, nlb, rbuf, off);
      ASSERT_TRUE(rc.ok()) << "read slba " << slba << " nlb " << nlb << ": " << rc.describe();
      long long bad = check_pattern(rbuf.data() + off, len, wid, slba * lba);
      ASSERT_EQ(bad, -1) << "read-back mismatch at byte " << bad << " of slba " << slba << " nlb " << nlb
                         << " offset " << off;
      bytes += len;
    }
  }
  // Final sweep: every block written holds the pattern of the last write to it.
  uint64_t checked = 0;
  for (auto it = last.begin(); it != last.end();) {
    uint64_t start = it->first;
    uint32_t n = 0;
    auto jt = it;
    while (jt != last.end() && jt->first == start + n && n < max_blocks) ++jt, ++n;
    auto rc = qp->read(nsid, start, n, rbuf, 0);
    ASSERT_TRUE(rc.ok()) << "sweep read slba " << start << " nlb " << n << ": " << rc.describe();
    for (; it != jt; ++it) {
      long long bad = check_pattern(rbuf.data() + (it->first - start) * lba, lba, it->second, it->first * lba);
      ASSERT_EQ(bad, -1) << "LBA " << it->first << " byte " << bad << " lost write " << it->second;
    }
    checked += n;
  }
  EXPECT_EQ(checked, last.size());
  std::printf("  nsid %u (lba %u): %d ops, %llu MiB moved, %d beyond MDTS (%zu B), %llu blocks swept, seed %llu\n", nsid, lba, ops,
              (unsigned long long)(bytes >> 20), beyond_mdts, c.mdts_bytes(), (unsigned long long)checked, (unsigned long long)seed);
}

}  // namespace

TEST(GuestDriver, BringUpAndIdentify) {
  AISIO_GUEST_FUNCTIONS(fns);
  for (auto& f : fns) {
    Opened o = open_ctrl(f.bdf);
    auto& id = o.ctrl->id();
    std::string sn(id.sn, sizeof id.sn), mn(id.mn, sizeof id.mn);
    std::printf("  %s: %s, sn '%s', mn '%s', mdts %zu B, %zu namespace(s), %u I/O queues\n", f.bdf.c_str(),
                o.ctrl->describe().c_str(), sn.c_str(), mn.c_str(), o.ctrl->mdts_bytes(), o.ctrl->namespaces().size(),
                o.ctrl->io_queue_limit());
    EXPECT_EQ(id.vid, 0x1b36);
    EXPECT_EQ(sn.rfind("aisio000", 0), 0u) << sn;
    EXPECT_NE(mn.find("QEMU NVMe"), std::string::npos) << mn;
    auto want = expected_namespaces();
    ASSERT_EQ(o.ctrl->namespaces().size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      auto& ns = o.ctrl->namespaces()[i];
      EXPECT_EQ(ns.nsid, want[i].nsid);
      EXPECT_EQ(ns.lba_size, want[i].lba);
      EXPECT_EQ(ns.bytes(), want[i].bytes);
    }
    if (config() == "smallmdts") EXPECT_EQ(o.ctrl->mdts_bytes(), 16384u);
    else EXPECT_EQ(o.ctrl->mdts_bytes(), 512u * 1024);
    o.ctrl->shutdown();
  }
}

TEST(GuestDriver, DataIntegrityBeyondMdts) {
  AISIO_GUEST_FUNCTIONS(fns);
  Opened o = open_ctrl(fns[0].bdf);
  uint64_t seed = seed_from_env(12345);
  size_t mdts = o.ctrl->mdts_bytes() ? o.ctrl->mdts_bytes() : (1u << 20);
  for (auto& ns : o.ctrl->namespaces())
    integrity(*o.ctrl, ns.nsid, seed + ns.nsid, 100, mdts * 5 / 2, 32u << 20);
  o.ctrl->shutdown();
}

TEST(GuestDriver, ControllerResetKeepsWorking) {
  AISIO_GUEST_FUNCTIONS(fns);
  Opened o = open_ctrl(fns[0].bdf);
  auto qp = o.ctrl->create_queue_pair(nvme::QueueOptions{.depth = 16});
  auto buf = o.ctrl->dma()->alloc(64 * 1024);
  uint32_t lba = o.ctrl->ns(1).lba_size;
  uint32_t nlb = uint32_t(buf.size() / lba);
  fill_pattern(buf.data(), buf.size(), 77, 0);
  ASSERT_TRUE(qp->write(1, 1000, nlb, buf).ok());
  o.ctrl->reset();
  std::memset(buf.data(), 0, buf.size());
  auto rc = qp->read(1, 1000, nlb, buf);
  ASSERT_TRUE(rc.ok()) << rc.describe();
  EXPECT_EQ(check_pattern(buf.data(), buf.size(), 77, 0), -1);
  qp.reset();
  o.ctrl->shutdown();
}

TEST(GuestDriver, AllControllersConcurrently) {
  AISIO_GUEST_FUNCTIONS(fns);
  if (fns.size() < 2) GTEST_SKIP() << "one controller in config " << config();
  std::vector<Opened> os;
  for (auto& f : fns) os.push_back(open_ctrl(f.bdf));
  std::vector<std::thread> ts;
  std::vector<std::string> errors(os.size());
  for (size_t i = 0; i < os.size(); ++i)
    ts.emplace_back([&, i] {
      try {
        auto& c = *os[i].ctrl;
        auto qp = c.create_queue_pair(nvme::QueueOptions{.depth = 32});
        auto buf = c.dma()->alloc(1u << 20);
        for (int k = 0; k < 16; ++k) {
          uint64_t slba = uint64_t(k) * 2048;
          fill_pattern(buf.data(), buf.size(), 1000 * i + k, 0);
          auto w = qp->write(1, slba, uint32_t(buf.size() / 512), buf);
          if (!w.ok()) throw std::runtime_error("write: " + w.describe());
          std::memset(buf.data(), 0, buf.size());
          auto r = qp->read(1, slba, uint32_t(buf.size() / 512), buf);
          if (!r.ok()) throw std::runtime_error("read: " + r.describe());
          if (check_pattern(buf.data(), buf.size(), 1000 * i + k, 0) != -1) throw std::runtime_error("mismatch");
        }
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : ts) t.join();
  for (size_t i = 0; i < os.size(); ++i) EXPECT_EQ(errors[i], "") << fns[i].bdf;
  for (auto& o : os) o.ctrl->shutdown();
}

namespace {
struct Range {
  uint64_t byte_off;
  size_t len;
};
std::vector<Range> cross_ranges(uint64_t ns_bytes, uint32_t lba) {
  // The first blocks, an unaligned-to-MDTS middle range larger than MDTS, the last blocks.
  return {{0, 64u * 1024}, {uint64_t(lba) * 4099, 1536u * 1024}, {ns_bytes - 128u * 1024, 128u * 1024}};
}
// Read or write [byte_off, +len) in pieces the queue can hold (a transfer split by MDTS
// must fit in the queue's free slots: 1.5 MiB at a 16 KiB MDTS would need 96).
nvme::Completion io_chunked(nvme::QueuePair& qp, uint8_t opc, uint32_t nsid, uint32_t lba, uint64_t byte_off,
                            size_t len, const DmaBuffer& buf, size_t piece) {
  nvme::Completion c;
  for (size_t done = 0; done < len && c.ok(); done += piece) {
    size_t n = std::min(piece, len - done);
    c = qp.io(opc, nsid, (byte_off + done) / lba, uint32_t(n / lba), buf, done);
  }
  return c;
}
size_t piece_for(const nvme::Controller& c) { return (c.mdts_bytes() ? c.mdts_bytes() : (1u << 20)) * 16; }

void* aligned(size_t n) {
  void* p = nullptr;
  if (posix_memalign(&p, 4096, n)) return nullptr;
  return p;
}
}  // namespace

TEST(GuestCrossCheck, DriverWritesKernelReads) {
  AISIO_GUEST_FUNCTIONS(fns);
  auto& f = fns[0];
  std::vector<nvme::Namespace> nss;
  {
    Opened o = open_ctrl(f.bdf);
    nss = o.ctrl->namespaces();
    auto qp = o.ctrl->create_queue_pair(nvme::QueueOptions{.depth = 32});
    for (auto& ns : nss) {
      for (auto r : cross_ranges(ns.bytes(), ns.lba_size)) {
        auto buf = o.ctrl->dma()->alloc(r.len);
        fill_pattern(buf.data(), r.len, 0xD00D + ns.nsid, r.byte_off);
        auto c = io_chunked(*qp, nvme::nvm::WRITE, ns.nsid, ns.lba_size, r.byte_off, r.len, buf, piece_for(*o.ctrl));
        ASSERT_TRUE(c.ok()) << c.describe();
      }
    }
    qp.reset();
    o.ctrl->shutdown();
  }
  bind_or_fail(f.bdf, pcie::Driver::nvme);
  for (auto& ns : nss) {
    std::string dev = kernel_block_device(f.bdf, ns.nsid);
    int fd = ::open(dev.c_str(), O_RDONLY | O_DIRECT);
    ASSERT_GE(fd, 0) << dev << ": " << std::strerror(errno);
    for (auto r : cross_ranges(ns.bytes(), ns.lba_size)) {
      auto* p = static_cast<uint8_t*>(aligned(r.len));
      ASSERT_EQ(pread(fd, p, r.len, off_t(r.byte_off)), ssize_t(r.len)) << dev << ": " << std::strerror(errno);
      long long bad = check_pattern(p, r.len, 0xD00D + ns.nsid, r.byte_off);
      EXPECT_EQ(bad, -1) << dev << " byte " << r.byte_off + (bad < 0 ? 0 : bad) << " differs from what aisio wrote";
      free(p);
    }
    ::close(fd);
    std::printf("  %s (nsid %u): kernel read back aisio's data byte for byte\n", dev.c_str(), ns.nsid);
  }
}

TEST(GuestCrossCheck, KernelWritesDriverReads) {
  AISIO_GUEST_FUNCTIONS(fns);
  auto& f = fns[0];
  bind_or_fail(f.bdf, pcie::Driver::nvme);
  std::vector<ExpectNs> nss = expected_namespaces();
  for (auto& ns : nss) {
    std::string dev = kernel_block_device(f.bdf, ns.nsid);
    int fd = ::open(dev.c_str(), O_RDWR | O_DIRECT);
    ASSERT_GE(fd, 0) << dev << ": " << std::strerror(errno);
    for (auto r : cross_ranges(ns.bytes, ns.lba)) {
      auto* p = static_cast<uint8_t*>(aligned(r.len));
      fill_pattern(p, r.len, 0xFEED + ns.nsid, r.byte_off);
      ASSERT_EQ(pwrite(fd, p, r.len, off_t(r.byte_off)), ssize_t(r.len)) << dev << ": " << std::strerror(errno);
      free(p);
    }
    ASSERT_EQ(fsync(fd), 0);
    ::close(fd);
  }
  Opened o = open_ctrl(f.bdf);
  auto qp = o.ctrl->create_queue_pair(nvme::QueueOptions{.depth = 32});
  for (auto& ns : nss) {
    for (auto r : cross_ranges(ns.bytes, ns.lba)) {
      auto buf = o.ctrl->dma()->alloc(r.len);
      auto c = io_chunked(*qp, nvme::nvm::READ, ns.nsid, ns.lba, r.byte_off, r.len, buf, piece_for(*o.ctrl));
      ASSERT_TRUE(c.ok()) << c.describe();
      long long bad = check_pattern(buf.data(), r.len, 0xFEED + ns.nsid, r.byte_off);
      EXPECT_EQ(bad, -1) << "nsid " << ns.nsid << " byte " << r.byte_off + (bad < 0 ? 0 : bad)
                         << " differs from what the kernel wrote";
    }
    std::printf("  nsid %u: aisio read back the kernel's data byte for byte\n", ns.nsid);
  }
  qp.reset();
  o.ctrl->shutdown();
}

TEST(GuestSriov, EnableVfsThroughKernelPf) {
  AISIO_GUEST_FUNCTIONS(fns);
  auto& pf = fns[0];
  if (!pf.sriov_capable) GTEST_SKIP() << "not SR-IOV capable in config " << config();
  bind_or_fail(pf.bdf, pcie::Driver::nvme);
  // Keep the kernel from probing the VFs: QEMU's VFs stay offline until the PF assigns
  // them queue and interrupt resources (Virtualization Management).
  pcie::write_attr(pcie::Sysfs().device_dir(pf.bdf) + "/sriov_drivers_autoprobe", "0");
  pcie::set_sriov_numvfs(pf.bdf, 2);
  auto all = pcie::enumerate_nvme();
  int vfs = 0;
  for (auto& f : all)
    if (f.is_vf()) {
      ++vfs;
      EXPECT_EQ(f.physfn, pf.bdf);
      EXPECT_EQ(f.driver, "");
      std::printf("  VF %s %04x:%04x of %s\n", f.bdf.c_str(), f.vendor, f.device, f.physfn.c_str());
    }
  EXPECT_EQ(vfs, 2);
  EXPECT_EQ(pcie::read_function(pf.bdf).sriov_numvfs, 2u);
  pcie::set_sriov_numvfs(pf.bdf, 0);
  EXPECT_EQ(pcie::read_function(pf.bdf).sriov_numvfs, 0u);
}
