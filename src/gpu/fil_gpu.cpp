// The GPU paths of `aisio fil run`. See fil_gpu.hpp.
#include <fmt/format.h>
#include <sys/resource.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>

#include "backends/unvme.hpp"
#include "common/cpu_time.hpp"
#include "common/error.hpp"
#include "extents/translate.hpp"
#include "fil/manifest.hpp"
#include "gpu/command_list.hpp"
#include "gpu/cuda.hpp"
#include "gpu/cufile.hpp"
#include "gpu/cuda_run.hpp"
#include "gpu/fil_gpu.hpp"
#include "gpu/kernels.hpp"
#include "gpu/queues.hpp"
#include "io/extent_source.hpp"
#include "nvme/controller.hpp"
#include "nvme/queue_pair.hpp"

namespace aisio::gpu {

namespace {

using kern::FileCheck;
using kern::FileDesc;
using kern::kHasKey;
using kern::kSparse;

// A file in the current batch.
struct Placed {
  uint32_t mi;           // manifest index
  uint64_t base;         // in staging
  uint64_t size;         // resolved size (what was read)
  std::string error;     // resolve / I/O error
  uint32_t cmd_first = 0, cmd_count = 0;
};

class Runner {
 public:
  // A read of the unvme-gpu path: counts its completion, keeps the first error per file.
  struct GpuRead : backends::UnvmeRequest {
    Runner* self = nullptr;
    size_t k = 0;
    static void done(backends::UnvmeRequest& r, nvme::Completion c) {
      auto& x = static_cast<GpuRead&>(r);
      x.self->completions_++;
      if (!c.ok()) {
        auto& p = x.self->placed_[x.self->cmd_files_[x.k]];
        if (p.error.empty()) p.error = "unvme-gpu read: " + c.describe();
      }
    }
  };

  Runner(fil::Session& s, const std::string& name, const fil::RunOptions& o) : s_(s), name_(name), o_(o), m_(s.manifest()) {}

  fil::PathResult run() {
    fil::PathResult r;
    r.path = name_;
    std::string why;
    if (!device_present(&why)) {
      r.skipped = "skipped: " + why;
      return r;
    }
    try {
      setup();
    } catch (const Error& e) {
      if (e.code() != Errc::not_supported && e.code() != Errc::invalid_argument && e.code() != Errc::system) throw;
      r.skipped = std::string("skipped: ") + e.what();
      teardown();
      return r;
    }
    r.describe = describe_;
    r.cache = fil::drop_cache(o_.drop, m_, o_);
    double p0 = cpu_seconds(RUSAGE_SELF), c0 = cpu_seconds(RUSAGE_THREAD);
    auto t0 = std::chrono::steady_clock::now();
    try {
      for (uint32_t i = 0; i < m_.files.size(); ++i) add(i, r);
      flush(r);
    } catch (...) {
      teardown();
      throw;
    }
    r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.thread_cpu_s = cpu_seconds(RUSAGE_THREAD) - c0;
    r.process_cpu_s = cpu_seconds(RUSAGE_SELF) - p0;
    r.ran = true;
    r.stats.resolve_s = resolve_s_;
    r.describe += fmt::format("; I/O {:.3f} s, GPU verify {:.3f} s, {} batch(es)", io_s_, verify_s_, batches_);
    teardown();
    return r;
  }

 private:
  void setup() {
    use_device(0);
    uint64_t largest = 0;
    for (auto& f : m_.files) largest = std::max(largest, f.size);
    cap_ = std::max<uint64_t>(256ull << 20, (largest + 8191) & ~uint64_t(4095));
    if (name_ == "cufile") {
      if (!s_.local())
        throw Error(Errc::not_supported, "cufile needs the data set mounted here (" + s_.dir() + " is not a directory)");
      cufile_ = CuFile::open();
      AISIO_CUDA(cudaMalloc(&plain_, cap_));
      staging_ptr_ = static_cast<uint8_t*>(plain_);
      cufile_->register_buffer(plain_, cap_);
      describe_ = "cuFileRead of each file into GPU memory; " + cufile_->describe();
      return;
    }
    auto ctrl = s_.controller();
    if (!ctrl) throw Error(Errc::not_supported, name_ + " needs a controller of this process (not --via homid)");
    const auto& acc = s_.access();
    nsid_ = acc.nsid;
    lba_ = acc.lba_size;
    src_ = s_.extent_source();
    g_ = GpuController::open(ctrl);
    staging_ = g_->data_heap()->alloc(cap_, kGpuPage);
    staging_ptr_ = staging_.data();
    const uint32_t qd = std::max<uint32_t>(1, o_.engine.qd);
    size_t mdts = ctrl->mdts_bytes() ? ctrl->mdts_bytes() : (size_t(1) << 20);
    io_size_ = std::min<size_t>(std::max<size_t>(o_.engine.io_size, lba_), mdts);
    io_size_ = std::min<size_t>(io_size_, size_t(ctrl->page_size() / 8) * ctrl->page_size());  // one PRP list page
    const uint32_t maxq = ctrl->cap().mqes() + 1;
    if (name_ == "gpu") {
      if (qd + 1 > maxq) throw Error(Errc::invalid_argument, fmt::format("--qd {} exceeds the controller's queues", qd));
      if (qd > 1024) throw Error(Errc::invalid_argument, "--qd above 1024 threads per queue");
      qs_ = std::make_unique<QueueSet>(g_, QueueSetOptions{std::max<uint32_t>(1, o_.threads), qd + 1});
      runner_ = std::make_unique<CommandRunner>(*qs_, qd);
      describe_ = fmt::format("GPU-initiated reads: {} queue(s) x {} threads on {}, {} KiB commands; {}", qs_->count(),
                              qd, acc.describe, io_size_ >> 10, g_->describe());
    } else {
      q_.emplace(acc, std::min<uint32_t>(qd + 1, maxq));
      describe_ = fmt::format("CPU-initiated reads into GPU memory (P2P): 1 queue pair, qd {}, {} KiB commands, on {}",
                              q_->queue_pair().capacity(), io_size_ >> 10, acc.describe);
    }
    describe_ += "; extents: " + src_->describe();
  }

  void teardown() {
    runner_.reset();
    qs_.reset();
    q_.reset();
    staging_.reset();
    g_.reset();
    if (plain_) {
      if (cufile_) cufile_->deregister_buffer(plain_);
      cudaFree(plain_);
      plain_ = nullptr;
    }
    cufile_.reset();
  }

  // Places file i in the batch (flushing first when it does not fit) and plans its reads.
  void add(uint32_t i, fil::PathResult& r) {
    const auto& mf = m_.files[i];
    uint64_t region = (std::max<uint64_t>(mf.size, 1) + 8191) & ~uint64_t(4095);  // room for a tail LBA
    if (used_ + region > cap_) flush(r);
    Placed p;
    p.mi = i;
    p.base = used_;
    p.size = mf.size;
    used_ += region;
    if (name_ != "cufile") {
      auto t0 = std::chrono::steady_clock::now();
      try {
        io::ResolvedFile rf = src_->resolve(mf.path);
        p.size = rf.size;
        extents::TranslateOptions topt;
        topt.lba_size = lba_;
        topt.device_offset = src_->device_offset();
        topt.max_nlb = uint32_t(io_size_ / lba_);
        topt.file_size = rf.size;
        auto runs = extents::translate(rf.extents, 0, rf.size, topt);
        p.cmd_first = uint32_t(cmds_.size());
        for (size_t k = 0; k < runs.size(); ++k) {
          const auto& run = runs[k];
          if (run.zero_fill) {
            zero_.push_back({p.base + run.file_offset, run.length});
            continue;
          }
          // A read lands whole LBAs at base + file_offset - skip: only LBA-aligned runs (and
          // a partial last one at EOF) are placed without overlapping their neighbours.
          bool last = run.file_offset + run.length >= rf.size;
          if (run.skip || (!last && run.length % lba_))
            throw Error(Errc::not_supported, "an extent not aligned to the LBA size (the GPU paths read whole LBAs "
                                             "in place)");
          ListCommand c;
          c.slba = run.slba;
          c.nlb = run.nlb;
          c.len = run.nlb * lba_;
          c.dst = p.base + run.file_offset;
          cmds_.push_back(c);
          cmd_files_.push_back(uint32_t(placed_.size()));
        }
        p.cmd_count = uint32_t(cmds_.size()) - p.cmd_first;
      } catch (const std::exception& e) {
        p.error = fmt::format("resolve/plan {}: {}", mf.path, e.what());
        cmds_.resize(p.cmd_first);
        cmd_files_.resize(p.cmd_first);
        p.cmd_count = 0;
      }
      resolve_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    placed_.push_back(std::move(p));
  }

  void read_batch() {
    auto t0 = std::chrono::steady_clock::now();
    if (name_ == "cufile") {
      for (auto& p : placed_) {
        const auto& mf = m_.files[p.mi];
        try {
          CuFile::File f(*cufile_, (std::filesystem::path(s_.dir()) / mf.path).string());
          p.size = f.read(plain_, mf.size + 1, 0, off_t(p.base));  // one byte more: a longer file shows
        } catch (const std::exception& e) {
          p.error = e.what();
        }
        ++dev_reads_;
        dev_bytes_ += p.size;
      }
    } else if (name_ == "gpu") {
      ListResult lr = runner_->run(0x02, nsid_, cmds_, staging_, 10000);
      for (size_t k = 0; k < cmds_.size(); ++k) {
        if (lr.status[k] == st::kOk) continue;
        auto& p = placed_[cmd_files_[k]];
        if (p.error.empty())
          p.error = fmt::format("GPU read of LBA {} (+{}): {}", cmds_[k].slba, cmds_[k].nlb,
                                status_text(lr.status[k]));
      }
      if (lr.timeouts) {
        // A timed-out queue is broken; recreate every queue for the next batch.
        for (uint32_t q = 0; q < qs_->count(); ++q) qs_->recreate(q);
      }
      dev_reads_ += cmds_.size();
      for (auto& c : cmds_) dev_bytes_ += c.len;
    } else {  // unvme-gpu: the unvme backend, qd commands in flight, one doorbell per batch
      std::vector<GpuRead> reqs(cmds_.size());
      size_t next = 0;
      completions_ = 0;
      auto& qp = q_->queue_pair();
      while (completions_ < cmds_.size()) {
        while (next < cmds_.size() && qp.in_flight() < qp.capacity()) {
          reqs[next].self = this;
          reqs[next].k = next;
          const auto& c = cmds_[next];
          if (!q_->submit_io<GpuRead>(reqs[next], backends::kRead, c.slba, c.nlb, staging_, c.dst)) break;
          ++next;
        }
        q_->flush();
        q_->reap<GpuRead>();
      }
      dev_reads_ += cmds_.size();
      for (auto& c : cmds_) dev_bytes_ += c.len;
    }
    io_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  void flush(fil::PathResult& r) {
    if (placed_.empty()) return;
    ++batches_;
    // Poison the batch, then zero the holes: a byte no read wrote shows as a mismatch.
    AISIO_CUDA(cudaMemset(staging_ptr_, 0xA5, used_));
    for (auto& z : zero_) {
      AISIO_CUDA(cudaMemset(staging_ptr_ + z.first, 0, z.second));
      zero_bytes_ += z.second;
    }
    AISIO_CUDA(cudaDeviceSynchronize());
    read_batch();
    verify_batch(r);
    placed_.clear();
    cmds_.clear();
    cmd_files_.clear();
    zero_.clear();
    used_ = 0;
  }

  void verify_batch(fil::PathResult& r) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<FileDesc> fd(placed_.size());
    std::vector<uint64_t> segs;
    for (size_t i = 0; i < placed_.size(); ++i) {
      const auto& p = placed_[i];
      const auto& mf = m_.files[p.mi];
      FileDesc& d = fd[i];
      d = FileDesc{p.base, mf.size, mf.key.value_or(0), uint32_t(segs.size() / 2), 0, 0, 0};
      if (mf.key && p.error.empty() && p.size == mf.size) d.flags |= kHasKey;
      if (mf.sparse) {
        d.flags |= kSparse;
        for (auto& s : mf.segments) {
          segs.push_back(s.off);
          segs.push_back(s.len);
        }
        d.seg_count = uint32_t(mf.segments.size());
      }
    }
    if (segs.empty()) segs = {0, 0};
    std::vector<FileCheck> init(fd.size(), FileCheck{0, ~0ull});
    DevArray<FileDesc> dfd(fd.size(), fd.data());
    DevArray<uint64_t> dsegs(segs.size(), segs.data());
    DevArray<FileCheck> dout(fd.size(), init.data());
    AISIO_CUDA(kern::launch_verify(staging_ptr_, dfd.p, dsegs.p, dout.p, uint32_t(fd.size()), nullptr));
    std::vector<FileCheck> out = dout.read();
    for (size_t i = 0; i < placed_.size(); ++i) {
      const auto& p = placed_[i];
      const auto& mf = m_.files[p.mi];
      ++r.files;
      r.bytes += mf.size;
      auto problem = [&](const std::string& what, const std::string& detail, int64_t off) {
        if (r.problems.size() < o_.max_report) r.problems.push_back({mf.path, what, detail, off});
      };
      if (!p.error.empty()) {
        ++r.errors;
        problem("I/O error", p.error, -1);
        continue;
      }
      if (!o_.verify) {
        ++r.verified_ok;
        continue;
      }
      if (p.size != mf.size) {
        ++r.mismatches;
        problem("size mismatch", fmt::format("read {} bytes, manifest says {}", p.size, mf.size), -1);
        continue;
      }
      if (!mf.key) {
        // No content key: hash on the host (after a copy back) against the manifest.
        std::vector<uint8_t> h(mf.size);
        if (mf.size) AISIO_CUDA(cudaMemcpy(h.data(), staging_ptr_ + p.base, mf.size, cudaMemcpyDeviceToHost));
        ++host_hashed_;
        if (XXH3_64bits(h.data(), h.size()) == mf.xxh3) ++r.verified_ok;
        else {
          ++r.mismatches;
          problem("hash mismatch", "XXH3-64 on the host differs (no content key for a GPU check)", -1);
        }
        continue;
      }
      if (out[i].bad_words == 0) {
        ++r.verified_ok;
      } else {
        ++r.mismatches;
        problem("content mismatch", fmt::format("{} bad 8-byte words (GPU check); first difference at byte {}",
                                                out[i].bad_words, out[i].first),
                int64_t(out[i].first));
      }
    }
    r.stats.files = r.files;
    r.stats.bytes = r.bytes;
    r.stats.device_reads = dev_reads_;
    r.stats.device_bytes = dev_bytes_;
    r.stats.zero_fill_bytes = zero_bytes_;
    verify_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (host_hashed_ && r.describe.find("hashed on the host") == std::string::npos)
      r.describe += fmt::format("; {} file(s) without a content key hashed on the host", host_hashed_);
  }

  fil::Session& s_;
  std::string name_;
  const fil::RunOptions& o_;
  const fil::Manifest& m_;
  std::string describe_;
  uint64_t cap_ = 0, used_ = 0;
  uint32_t nsid_ = 1, lba_ = 512;
  size_t io_size_ = 256 << 10;
  std::shared_ptr<io::ExtentSource> src_;
  std::shared_ptr<GpuController> g_;
  DmaBuffer staging_;
  void* plain_ = nullptr;
  uint8_t* staging_ptr_ = nullptr;
  std::unique_ptr<QueueSet> qs_;
  std::unique_ptr<CommandRunner> runner_;
  std::optional<backends::UnvmeQueue> q_;
  std::shared_ptr<CuFile> cufile_;
  std::vector<Placed> placed_;
  std::vector<ListCommand> cmds_;
  std::vector<uint32_t> cmd_files_;
  std::vector<std::pair<uint64_t, uint64_t>> zero_;
  uint64_t dev_reads_ = 0, dev_bytes_ = 0, zero_bytes_ = 0, host_hashed_ = 0;
  size_t completions_ = 0;
  double resolve_s_ = 0, io_s_ = 0, verify_s_ = 0;
  uint32_t batches_ = 0;
};

}  // namespace

fil::PathResult run_fil_path(fil::Session& s, const std::string& name, const fil::RunOptions& o) {
  Runner r(s, name, o);
  return r.run();
}

}  // namespace aisio::gpu
