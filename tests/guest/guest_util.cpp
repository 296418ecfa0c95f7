#include "guest_util.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "common/error.hpp"
#include "spec/registers.hpp"

namespace aisio::guest {

std::string config() {
  const char* c = std::getenv("AISIO_TESTBED_CONFIG");
  return c ? c : "";
}
bool in_testbed() {
  const char* c = std::getenv("AISIO_TESTBED");
  return c && std::string(c) == "1";
}

std::string skip_reason() {
  if (!in_testbed())
    return "guest tests run only inside the QEMU testbed (testbed/run-guest sets AISIO_TESTBED=1): they rebind "
           "NVMe functions and overwrite their data";
  return "no QEMU NVMe function (1b36:0010, class 010802) found under /sys/bus/pci/devices";
}

std::vector<pcie::PciFunction> qemu_nvme_functions() {
  std::vector<pcie::PciFunction> out;
  if (!in_testbed()) return out;
  for (auto& f : pcie::enumerate_nvme())
    if (f.vendor == 0x1b36 && f.device == 0x0010 && !f.is_vf()) out.push_back(f);
  return out;
}

void bind_or_fail(const std::string& bdf, pcie::Driver d) {
  pcie::bind_driver(bdf, d, {}, std::chrono::milliseconds(15000));
  auto f = pcie::read_function(bdf);
  ASSERT_EQ(f.driver, pcie::driver_name(d));
}

namespace {
std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (auto* e = readdir(d))
      if (e->d_name[0] != '.') out.emplace_back(e->d_name);
    closedir(d);
  }
  return out;
}
std::string link_base(const std::string& p) {
  char buf[4096];
  ssize_t n = readlink(p.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return {};
  buf[n] = 0;
  std::string s(buf);
  return s.substr(s.rfind('/') + 1);
}
bool is_path_disk(const std::string& name) {  // nvme0c0n1: a hidden multipath path
  return name.find('c') != std::string::npos && name.find('c') > 4;
}
}  // namespace

std::string kernel_block_device(const std::string& bdf, uint32_t nsid, int wait_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  for (;;) {
    // /sys/block/<disk>/device is the controller (nvmeX) for a plain namespace disk and
    // for a multipath path disk nvme<S>c<C>n<N>, whose head disk is nvme<S>n<N>; a head's
    // own device link names the subsystem, so heads are found through their paths.
    for (auto& disk : list_dir("/sys/block")) {
      if (disk.rfind("nvme", 0) != 0) continue;
      auto ns = pcie::try_read_attr("/sys/block/" + disk + "/nsid");
      if (!ns || std::stoul(*ns) != nsid) continue;
      if (link_base("/sys/block/" + disk + "/device/device") != bdf) continue;
      std::string name = disk;
      if (is_path_disk(disk)) {
        auto c = disk.find('c', 4), n = disk.find('n', c);
        name = disk.substr(0, c) + disk.substr(n);
      }
      std::string dev = "/dev/" + name;
      struct stat st;
      if (stat(dev.c_str(), &st) == 0) return dev;
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw Error(Errc::timeout, "no kernel block device for " + bdf + " nsid " + std::to_string(nsid));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string RawIdentify::serial() const {
  std::string s(reinterpret_cast<const char*>(page.data()) + 4, 20);
  while (!s.empty() && (s.back() == ' ' || s.back() == 0)) s.pop_back();
  return s;
}
std::string RawIdentify::model() const {
  std::string s(reinterpret_cast<const char*>(page.data()) + 24, 40);
  while (!s.empty() && (s.back() == ' ' || s.back() == 0)) s.pop_back();
  return s;
}

RawIdentify raw_identify(const MmioWindow& bar, DmaHeap& heap, bool straddle_2m) {
  using namespace aisio::nvme;
  using clock = std::chrono::steady_clock;
  Cap cap{bar.read64(reg::CAP)};
  auto to = std::chrono::milliseconds(500 * std::max<uint32_t>(cap.to(), 1));
  auto wait = [&](bool rdy) {
    auto dl = clock::now() + to;
    while (bool(bar.read32(reg::CSTS) & csts::RDY) != rdy) {
      if (bar.read32(reg::CSTS) & csts::CFS) throw Error(Errc::controller_fatal, "CSTS.CFS during raw bring-up");
      if (clock::now() > dl) throw Error(Errc::not_ready, std::string("CSTS.RDY did not become ") + (rdy ? "1" : "0"));
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  };
  bar.write32(reg::CC, 0);
  wait(false);
  constexpr uint32_t depth = 4;
  DmaBuffer sq = heap.alloc(depth * 64, 4096), cq = heap.alloc(depth * 16, 4096);
  // With straddle_2m the 4 KiB identify data lands across a 2 MiB virtual boundary: on
  // hugepages its two halves live in different hugepages (different bus[] entries).
  constexpr size_t M2 = size_t(2) << 20;
  DmaBuffer data = heap.alloc(straddle_2m ? M2 + 8192 : 4096, 4096);
  size_t data_off = 0;
  if (straddle_2m) data_off = (M2 - 2048 - (uintptr_t(data.data()) % M2)) % M2;
  bar.write32(reg::AQA, aqa::make(depth, depth));
  bar.write64(reg::ASQ, sq.iova());
  bar.write64(reg::ACQ, cq.iova());
  bar.write32(reg::CC, cc::EN | cc::css(0) | cc::mps(0) | cc::iosqes(6) | cc::iocqes(4));
  wait(true);
  // Identify Controller: opcode 0x06, CID 0x77, PRP1 = data page (+ offset: PRP1 may
  // carry an offset, PRP2 then names the next page when it crosses one).
  uint32_t* sqe = sq.as<uint32_t>();
  std::memset(sqe, 0, 64);
  sqe[0] = 0x06u | (0x77u << 16);
  uint64_t prp1 = data.iova(data_off);
  uint64_t prp2 = (data_off & 4095) ? data.iova((data_off & ~size_t(4095)) + 4096) : 0;
  std::memset(data.data() + data_off, 0xEE, 4096);
  std::memcpy(&sqe[6], &prp1, 8);
  std::memcpy(&sqe[8], &prp2, 8);
  sqe[10] = 1;  // CNS 1
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  uint32_t dstrd = cap.dstrd();
  bar.write32(sq_tail_doorbell(0, dstrd), 1);
  volatile uint32_t* cqe = reinterpret_cast<volatile uint32_t*>(cq.data());
  auto dl = clock::now() + std::chrono::seconds(5);
  while (!(cqe[3] & (1u << 16))) {  // phase tag 1 on the first pass
    if (clock::now() > dl) throw Error(Errc::timeout, "raw Identify: no completion in 5 s");
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  uint32_t dw3 = cqe[3];
  bar.write32(cq_head_doorbell(0, dstrd), 1);
  if ((dw3 & 0xFFFF) != 0x77) throw Error(Errc::protocol, "raw Identify: CQE for CID " + std::to_string(dw3 & 0xFFFF));
  if ((dw3 >> 17) & 0x7FF) throw Error(Errc::nvme_status, "raw Identify: status " + std::to_string((dw3 >> 17) & 0x7FF));
  RawIdentify r;
  r.page.assign(data.data() + data_off, data.data() + data_off + 4096);
  r.data_iova = prp1;
  r.data_iova2 = prp2;
  // Leave the controller disabled, as a driver taking over would find it.
  bar.write32(reg::CC, 0);
  wait(false);
  return r;
}

static inline uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

void fill_pattern(uint8_t* p, size_t n, uint64_t seed, uint64_t base) {
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = mix(seed * 0x9E3779B97F4A7C15ULL + (base + i) / 8);
    std::memcpy(p + i, &v, std::min<size_t>(8, n - i));
  }
}

long long check_pattern(const uint8_t* p, size_t n, uint64_t seed, uint64_t base) {
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = mix(seed * 0x9E3779B97F4A7C15ULL + (base + i) / 8);
    size_t k = std::min<size_t>(8, n - i);
    if (std::memcmp(p + i, &v, k) != 0) {
      for (size_t j = 0; j < k; ++j)
        if (p[i + j] != reinterpret_cast<uint8_t*>(&v)[j]) return (long long)(i + j);
    }
  }
  return -1;
}

}  // namespace aisio::guest
