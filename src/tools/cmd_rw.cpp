// aisio read|write HANDLE --slba N --nlb N --file F [--nsid N] [--verify]
//   write: the file's bytes go to the LBA range (zero padded to whole blocks);
//          --verify reads the range back and compares.
//   read:  the LBA range goes to the file; --verify instead compares it with the file.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "tools/command.hpp"
#include "target/target.hpp"
#include "tcp/controller.hpp"

namespace aisio::tools {
namespace {

struct RwOpts {
  std::string handle, file;
  uint32_t nsid = 1;
  uint64_t slba = 0;
  uint64_t nlb = 0;
  bool verify = false;
};

constexpr size_t kChunk = 1u << 20;

void check(const nvme::Completion& c, const char* what, uint64_t slba) {
  if (c.ok()) return;
  if (c.host != nvme::HostStatus::none)
    throw Error(Errc::timeout, fmt::format("{} at LBA {}: {}", what, slba, c.describe()));
  throw Error(c.status, fmt::format("{} at LBA {}", what, slba));
}

void run(const RwOpts& o, bool write) {
  auto t = target::open(o.handle);
  const target::NamespaceGeometry ns = t->ns(o.nsid);
  uint64_t nlb = o.nlb;
  const Fd file(::open(o.file.c_str(), write || o.verify ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC, 0644));
  if (!file) throw_errno("open " + o.file);
  const int fd = file.get();
  if (nlb == 0) {
    if (!(write || o.verify)) throw Error(Errc::invalid_argument, "--nlb is required for read");
    off_t size = lseek(fd, 0, SEEK_END);
    nlb = (uint64_t(size) + ns.lba_size - 1) / ns.lba_size;
    if (nlb == 0) throw Error(Errc::invalid_argument, o.file + " is empty");
  }
  if (o.slba >= ns.blocks || nlb > ns.blocks - o.slba)
    throw Error(Errc::invalid_argument, fmt::format("LBA range {}+{} is beyond namespace {} ({} blocks)", o.slba, nlb,
                                                    o.nsid, ns.blocks));
  auto buf = t->dma()->alloc(kChunk, t->page_size());
  auto cmp = t->dma()->alloc(kChunk, t->page_size());
  // One command per chunk over NVMe/TCP (a chunk within MDTS); over PCIe a chunk is split
  // into MDTS-sized commands, all in flight at once: keep it within what the queue holds
  // (a 16 KiB MDTS on a 32-deep queue fits 496 KiB, not 1 MiB).
  std::unique_ptr<nvme::QueuePair> qp;
  std::unique_ptr<tcp::QueuePair> tq;
  size_t chunk = kChunk;
  if (auto* tc = t->tcp()) {
    tq = tc->create_queue_pair({.depth = 4});
    chunk = std::min(kChunk, tq->max_transfer());
  } else {
    qp = t->create_queue_pair({.depth = 32}, o.nsid);
    chunk = std::min(kChunk, qp->max_transfer() * qp->capacity());
  }
  auto io = [&](uint8_t opc, uint64_t lba, uint32_t n, const DmaBuffer& b) {
    if (qp) return qp->io(opc, o.nsid, lba, n, b);
    nvme::Sqe s = nvme::cmd::rw(opc, o.nsid, lba, n);
    return tq->execute(s, b.data(), n * ns.lba_size);
  };
  const uint64_t per = chunk / ns.lba_size;
  uint64_t mismatches = 0;
  for (uint64_t done = 0; done < nlb; done += per) {
    uint32_t n = uint32_t(std::min(per, nlb - done));
    size_t bytes = size_t(n) * ns.lba_size;
    uint64_t lba = o.slba + done;
    off_t foff = off_t(done * ns.lba_size);
    if (write || o.verify) {
      std::memset(buf.data(), 0, bytes);
      if (pread(fd, buf.data(), bytes, foff) < 0) throw_errno("read " + o.file);
    }
    if (write) {
      check(io(nvme::nvm::WRITE, lba, n, buf), "Write", lba);
      if (!o.verify) continue;
    }
    nvme::Completion c = io(nvme::nvm::READ, lba, n, write || o.verify ? cmp : buf);
    check(c, "Read", lba);
    if (write || o.verify) {
      for (size_t i = 0; i < bytes; ++i)
        if (buf.data()[i] != cmp.data()[i]) {
          if (mismatches++ == 0)
            fmt::print(stderr, "first mismatch at byte {} (LBA {})\n", foff + off_t(i), lba + i / ns.lba_size);
        }
    } else if (pwrite(fd, buf.data(), bytes, foff) != ssize_t(bytes)) {
      throw_errno("write " + o.file);
    }
  }
  if (mismatches) throw Error(Errc::io, fmt::format("verify failed: {} bytes differ", mismatches));
  fmt::print("{} {} blocks ({} bytes) at LBA {} of {} namespace {}{}\n", write ? "wrote" : (o.verify ? "verified" : "read"),
             nlb, nlb * ns.lba_size, o.slba, o.handle, o.nsid, o.verify ? ", verified" : "");
}

void add(CLI::App& app, bool write) {
  auto o = std::make_shared<RwOpts>();
  auto* c = app.add_subcommand(write ? "write" : "read",
                               write ? "Write a file to an LBA range" : "Read an LBA range into a file");
  c->add_option("handle", o->handle, target::kHandleHelp)->required();
  c->add_option("--file,-f", o->file, write ? "source file" : "destination file")->required();
  c->add_option("--nsid,-n", o->nsid, "namespace id")->capture_default_str();
  c->add_option("--slba,-s", o->slba, "starting LBA")->capture_default_str();
  c->add_option("--nlb,-c", o->nlb, write ? "blocks (default: the file's size)" : "blocks");
  c->add_flag("--verify", o->verify, write ? "read back and compare" : "compare with the file instead of writing it");
  c->callback([o, write] { run(*o, write); });
}

CommandRegistrar reg_read(30, [](CLI::App& app) { add(app, false); });
CommandRegistrar reg_write(31, [](CLI::App& app) { add(app, true); });

}  // namespace
}  // namespace aisio::tools
