// homic-verify: a homid client doing verified I/O (write a pattern, read it back,
// compare) on queues homid creates for it. Used by tests/homi and by the QEMU testbed
// suite (testbed/suites/homid.sh); links statically with -DAISIO_STATIC=ON.
//
//   homic-verify --socket /run/homid/homid.sock --controller ssd0 --slot 0 --queues 2
//   homic-verify ... --hold      # allocate, print READY, wait to be killed
//   homic-verify ... --dump F    # read the slot's range into file F (no writes)
//   homic-verify ... --compare F # read the slot's range and compare it with file F
//
// Each slot writes its own LBA range, so several processes can run at once. Exit
// status 0: every block read back as written.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "common/error.hpp"
#include "homi/client.hpp"

using namespace aisio;

namespace {

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void fill(uint8_t* p, size_t n, uint64_t seed) {
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = mix(seed + i);
    std::memcpy(p + i, &v, std::min<size_t>(8, n - i));
  }
}

struct Io {
  bool done = false;
  nvme::Completion c;
  static void cb(void* a, nvme::Completion c) {
    auto* io = static_cast<Io*>(a);
    io->c = c;
    io->done = true;
  }
};

// Writes `count` I/Os of nlb blocks starting at slba through qp (batches of up to the
// queue's capacity), reads them back and compares. Returns mismatching I/Os.
uint64_t verify(nvme::QueuePair& qp, DmaHeap& heap, uint32_t nsid, uint32_t lba, uint64_t slba, uint32_t nlb,
                uint32_t count, uint64_t seed) {
  size_t bytes = size_t(nlb) * lba;
  uint32_t batch = std::min<uint32_t>(count, qp.capacity());
  DmaBuffer wbuf = heap.alloc(bytes * batch), rbuf = heap.alloc(bytes * batch);
  uint64_t bad = 0;
  for (uint32_t first = 0; first < count; first += batch) {
    uint32_t n = std::min(batch, count - first);
    for (uint32_t pass = 0; pass < 2; ++pass) {
      std::vector<Io> ios(n);
      const DmaBuffer& buf = pass == 0 ? wbuf : rbuf;
      if (pass == 0)
        for (uint32_t i = 0; i < n; ++i) fill(wbuf.data() + i * bytes, bytes, seed + first + i);
      else
        std::memset(rbuf.data(), 0, rbuf.size());
      for (uint32_t i = 0; i < n; ++i) {
        uint8_t opc = pass == 0 ? nvme::nvm::WRITE : nvme::nvm::READ;
        while (!qp.submit_io(opc, nsid, slba + uint64_t(first + i) * nlb, nlb, buf, i * bytes, Io::cb, &ios[i])) {
          qp.ring();
          qp.poll();
        }
      }
      qp.ring();
      for (;;) {
        bool all = true;
        for (auto& io : ios) all = all && io.done;
        if (all) break;
        qp.poll();
      }
      for (auto& io : ios)
        if (!io.c.ok()) throw Error(Errc::io, std::string(pass ? "read" : "write") + " failed: " + io.c.describe());
    }
    for (uint32_t i = 0; i < n; ++i)
      if (std::memcmp(wbuf.data() + i * bytes, rbuf.data() + i * bytes, bytes) != 0) ++bad;
  }
  return bad;
}

// Reads the blocks [slba, slba + blocks) through qp into `out` (--dump / --compare).
std::vector<uint8_t> read_range(nvme::QueuePair& qp, DmaHeap& heap, uint32_t nsid, uint32_t lba, uint64_t slba,
                                uint64_t blocks) {
  std::vector<uint8_t> out(size_t(blocks) * lba);
  const uint32_t chunk = uint32_t(std::min<uint64_t>(blocks, (128u << 10) / lba));
  DmaBuffer buf = heap.alloc(size_t(chunk) * lba);
  for (uint64_t b = 0; b < blocks; b += chunk) {
    uint32_t n = uint32_t(std::min<uint64_t>(chunk, blocks - b));
    nvme::Completion c = qp.read(nsid, slba + b, n, buf);
    if (!c.ok()) throw Error(Errc::io, "read failed: " + c.describe());
    std::memcpy(out.data() + b * lba, buf.data(), size_t(n) * lba);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"homic-verify: verified I/O through homid"};
  std::string socket = homic::default_socket(), controller = "0";
  uint32_t nsid = 1, queues = 1, depth = 32, ios = 64, nlb = 8, slot = 0, rounds = 1;
  bool hold = false;
  std::string dump, compare;
  app.add_option("--socket", socket, "homid socket")->capture_default_str();
  app.add_option("--controller", controller, "controller name or index")->capture_default_str();
  app.add_option("--nsid", nsid)->capture_default_str();
  app.add_option("--queues", queues, "queue pairs to allocate")->capture_default_str();
  app.add_option("--depth", depth)->capture_default_str();
  app.add_option("--ios", ios, "I/Os per queue")->capture_default_str();
  app.add_option("--nlb", nlb, "blocks per I/O")->capture_default_str();
  app.add_option("--slot", slot, "selects a private LBA range")->capture_default_str();
  app.add_option("--rounds", rounds, "allocate, verify and release this many times")->capture_default_str();
  app.add_flag("--hold", hold, "allocate the queues, print READY and wait to be killed");
  app.add_option("--dump", dump, "read the slot's range (queue 0's part) into this file and exit");
  app.add_option("--compare", compare, "read the slot's range (queue 0's part) and compare it with this file");
  CLI11_PARSE(app, argc, argv);
  try {
    homic::ConnectOptions co;
    co.name = fmt::format("homic-verify/{}", slot);
    auto client = homic::Client::connect(socket, co);
    auto s = homic::Session::open(client, controller);
    uint32_t lba = s->lba_size(nsid);
    if (!lba) throw Error(Errc::invalid_argument, fmt::format("namespace {} is not active", nsid));
    uint64_t per_queue = uint64_t(ios) * nlb;
    uint64_t span = per_queue * queues;
    if ((uint64_t(slot) + 1) * span > s->nsze(nsid))
      throw Error(Errc::invalid_argument, fmt::format("slot {} does not fit in namespace {}", slot, nsid));
    uint64_t total = 0, bad = 0;
    for (uint32_t round = 0; round < rounds; ++round) {
      std::vector<std::unique_ptr<nvme::QueuePair>> qps;
      for (uint32_t q = 0; q < queues; ++q) qps.push_back(s->create_queue_pair({.depth = depth}, nsid));
      if (!dump.empty() || !compare.empty()) {
        uint64_t slba = uint64_t(slot) * span;
        std::vector<uint8_t> got = read_range(*qps[0], *s->dma(), nsid, lba, slba, per_queue);
        if (!dump.empty()) {
          std::ofstream(dump, std::ios::binary).write(reinterpret_cast<const char*>(got.data()), std::streamsize(got.size()));
          fmt::print("homic-verify slot {}: {} bytes of LBA {}.. written to {}\n", slot, got.size(), slba, dump);
          return 0;
        }
        std::ifstream in(compare, std::ios::binary);
        std::vector<uint8_t> want((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (want.size() != got.size() || want != got) {
          fmt::print(stderr, "homic-verify slot {}: LBA {}.. differs from {} ({} vs {} bytes)\n", slot, slba, compare,
                     got.size(), want.size());
          return 1;
        }
        fmt::print("homic-verify slot {}: LBA {}.. matches {} ({} bytes)\n", slot, slba, compare, got.size());
        return 0;
      }
      if (hold) {
        std::string qids;
        for (auto& qp : qps) qids += fmt::format(" {}", qp->qid());
        fmt::print("READY{}\n", qids);
        std::fflush(stdout);
        for (;;) pause();
      }
      for (uint32_t q = 0; q < queues; ++q) {
        uint64_t slba = uint64_t(slot) * span + q * per_queue;
        bad += verify(*qps[q], *s->dma(), nsid, lba, slba, nlb, ios, (uint64_t(slot) << 40) ^ (uint64_t(round) << 32) ^ q);
        total += ios;
      }
    }
    if (bad) {
      fmt::print(stderr, "homic-verify slot {}: {} of {} I/Os read back wrong\n", slot, bad, total);
      return 1;
    }
    fmt::print("homic-verify slot {}: OK, {} I/Os of {} blocks verified on {} queue(s) x {} round(s) of {}\n", slot,
               total, nlb, queues, rounds, s->info().name);
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "homic-verify: {}\n", e.what());
    return 1;
  }
}
